//! The blind relay against hostile peers on loopback: a registration with
//! a forged source pairs nobody (the relay is not an open proxy toward a
//! victim), a forged re-registration does not end a live session, and a
//! flood of registrations that never complete locks nobody out.

use std::time::Duration;

use tokio::time::{sleep, timeout};

mod common;
mod hostile;
use common::bootstrap_node;
use hostile::{Victim, bind, hello, payload, register};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_registration_pairs_no_victim() {
    let relay_node = bootstrap_node().await;
    let relay = relay_node.local_addr();
    let victim = Victim::bind([127, 0, 0, 21], 1).await;
    // The attacker forges the victim's address: its hellos leave from the
    // victim's address, and it never sees the answers (the victim does).
    let session = [0x42u8; 32];
    let spoof = victim.forger(0);
    let mut sent_as_victim = 0u64;
    for _ in 0..10 {
        let h = hello(session);
        sent_as_victim += h.len() as u64;
        spoof.send_to(&h, relay).await.expect("send");
    }
    let attacker = bind([127, 0, 0, 22]).await;
    register(&attacker, relay, session).await;
    for _ in 0..100 {
        attacker.send_to(&payload(1000), relay).await.expect("send");
    }
    sleep(Duration::from_millis(500)).await;
    let received = victim.bytes();
    assert!(
        received <= 2 * sent_as_victim,
        "{received} bytes reached the victim for {sent_as_victim} sent in its name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_survives_forged_registrations_and_a_flood() {
    let relay_node = bootstrap_node().await;
    let relay = relay_node.local_addr();
    // 1,100 registrations that never echo their cookie, from as many
    // addresses.
    for i in 0..1100u32 {
        let ip = [127, 0, 60 + (i / 250) as u8, 1 + (i % 250) as u8];
        let socket = bind(ip).await;
        let mut session = [0x99u8; 32];
        session[..4].copy_from_slice(&i.to_be_bytes());
        socket.send_to(&hello(session), relay).await.expect("send");
    }
    sleep(Duration::from_millis(300)).await;
    let one = bind([127, 0, 0, 31]).await;
    let two = bind([127, 0, 0, 32]).await;
    let session = [0x17u8; 32];
    assert!(
        register(&one, relay, session).await,
        "the first side registers"
    );
    assert!(
        register(&two, relay, session).await,
        "the second side registers"
    );
    // Forged registrations of another session in the first side's name
    // (sent from its address, as a spoofer would): a made-up cookie, and a
    // bare hello (which the old relay took as a registration that ended
    // the address's live session).
    let mut forged = hello([0x18; 32]);
    forged.extend_from_slice(&[0x33; 32]);
    one.send_to(&forged, relay).await.expect("send");
    one.send_to(&hello([0x18; 32]), relay).await.expect("send");
    sleep(Duration::from_millis(200)).await;
    let mut buf = [0u8; 2048];
    while timeout(Duration::from_millis(50), two.recv_from(&mut buf))
        .await
        .is_ok()
    {}
    while timeout(Duration::from_millis(50), one.recv_from(&mut buf))
        .await
        .is_ok()
    {}
    one.send_to(&payload(200), relay).await.expect("send");
    let got = timeout(Duration::from_secs(1), two.recv_from(&mut buf)).await;
    assert!(
        matches!(got, Ok(Ok((200, _)))),
        "the live session still carries data: {got:?}"
    );
}
