//! A listener that runs out of file descriptors keeps serving. Its own test
//! binary (so its own process): it lowers the process's open-file limit.

mod common;

use std::time::Duration;

use hyper_core::KeyPair;
use hyper_wire::{Limits, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp};

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd").expect("proc").count() as u64
}

fn set_open_file_limit(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read a plain struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

#[tokio::test]
async fn a_listener_out_of_file_descriptors_backs_off_and_keeps_serving() {
    let (_wd, ws, core) = common::writer(20);
    let seeder = Replication::new(
        ws,
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            limits: Limits {
                handshake_timeout: Duration::from_millis(300),
                ..Limits::default()
            },
            ..ReplicationOptions::default()
        },
    );
    seeder.add_core(&core);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let server = serve_tcp(&seeder, listener);
    // Room for a few sockets only: the clients and the accepted ends
    // together run the process out of descriptors.
    let old = set_open_file_limit(open_files() + 12);
    let mut clients = Vec::new();
    for _ in 0..40 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            clients.push(s);
        }
    }
    // Accepts fail with EMFILE meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(clients);
    set_open_file_limit(old);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!server.is_finished(), "the listener must not end");
    let (_rd, rs) = common::eventual_store();
    let reader = common::replication(&rs);
    let replica = rs.replica(&core.key()).expect("replica");
    reader.add_core(&replica);
    let _connection = connect_tcp(&reader, addr).await.expect("connect");
    let block = reader
        .get(&replica, 3, Duration::from_secs(5))
        .await
        .expect("served after running out of descriptors");
    assert_eq!(block, b"block 3");
}
