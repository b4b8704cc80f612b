//! The QUIC module's tests: identities proven both ways, refused
//! forgeries, stream headers and names.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An endpoint on a fresh 127.0.0.1 port with the key from `seed`.
fn local_endpoint(seed: u8) -> (quinn::Endpoint, KeyPair, SocketAddr) {
    let identity = KeyPair::from_seed([seed; 32]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let endpoint = endpoint(socket, &identity).expect("endpoint");
    let addr = endpoint.local_addr().expect("local addr");
    (endpoint, identity, addr)
}

/// Waits for `future`, failing the test after 10 s instead of hanging.
async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

/// Accepts one incoming connection on `endpoint`.
async fn accept(endpoint: &quinn::Endpoint) -> Result<quinn::Connection, ConnectionError> {
    endpoint.accept().await.expect("incoming").await
}

#[tokio::test]
async fn peers_prove_their_keys_and_carry_bytes_both_ways() {
    let (server, server_id, server_addr) = local_endpoint(1);
    let (client, client_id, _) = local_endpoint(2);

    let server_task = tokio::spawn(async move {
        let connection = accept(&server).await.expect("server handshake");
        let peer = remote_identity(&connection);
        let mut stream = accept_stream(&connection).await.expect("accept stream");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.expect("read");
        stream.write_all(&received).await.expect("echo");
        stream.shutdown().await.expect("finish");
        connection.closed().await;
        (peer, received.len())
    });

    let connection = connect(&client, server_addr, &server_id.public_key())
        .await
        .expect("connect");
    assert_eq!(remote_identity(&connection), Some(server_id.public_key()));

    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut stream = open_stream(&connection).await.expect("open stream");
    stream.write_all(&payload).await.expect("write");
    stream.shutdown().await.expect("finish");
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).await.expect("read echo");
    assert_eq!(echoed, payload);
    connection.close(VarInt::from_u32(0), b"done");

    let (seen, received) = within(server_task).await.expect("server task");
    assert_eq!(seen, Some(client_id.public_key()));
    assert_eq!(received, payload.len());
}

#[tokio::test]
async fn the_responder_may_speak_first() {
    let (server, server_id, server_addr) = local_endpoint(3);
    let (client, _, _) = local_endpoint(4);

    let server_task = tokio::spawn(async move {
        let connection = accept(&server).await.expect("server handshake");
        let mut stream = accept_stream(&connection).await.expect("accept stream");
        stream.write_all(b"hello").await.expect("write");
        stream.shutdown().await.expect("finish");
        connection.closed().await;
    });

    let connection = connect(&client, server_addr, &server_id.public_key())
        .await
        .expect("connect");
    let mut stream = open_stream(&connection).await.expect("open stream");
    let mut greeting = [0u8; 5];
    stream.read_exact(&mut greeting).await.expect("read");
    assert_eq!(&greeting, b"hello");
    connection.close(VarInt::from_u32(0), b"done");
    within(server_task).await.expect("server task");
}

#[tokio::test]
async fn a_server_with_another_key_is_refused() {
    let (server, _, server_addr) = local_endpoint(5);
    let (client, _, _) = local_endpoint(6);
    let expected = KeyPair::from_seed([7; 32]).public_key();

    let server_task = tokio::spawn(async move { accept(&server).await });

    let result = within(connect(&client, server_addr, &expected)).await;
    match result {
        Err(QuicError::WrongIdentity {
            expected: asked,
            found: None,
        }) => assert_eq!(asked, expected),
        other => panic!("expected WrongIdentity, got {other:?}"),
    }
    // The server never gets a connection: the client aborted before
    // sending its key.
    assert!(within(server_task).await.expect("server task").is_err());
}

#[tokio::test]
async fn the_server_sees_each_clients_key() {
    let (server, server_id, server_addr) = local_endpoint(8);
    let (first, first_id, _) = local_endpoint(9);
    let (second, second_id, _) = local_endpoint(10);

    let server_task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let connection = accept(&server).await.expect("server handshake");
            seen.push(remote_identity(&connection));
        }
        seen
    });

    let a = connect(&first, server_addr, &server_id.public_key())
        .await
        .expect("first connect");
    let b = connect(&second, server_addr, &server_id.public_key())
        .await
        .expect("second connect");
    let seen = within(server_task).await.expect("server task");
    assert_eq!(
        seen,
        vec![Some(first_id.public_key()), Some(second_id.public_key())]
    );
    drop((a, b));
}

/// An endpoint on a fresh 127.0.0.1 port that presents `presented`'s
/// key but signs its handshakes with `signer`'s.
fn forged_endpoint(presented: &KeyPair, signer: &KeyPair) -> (quinn::Endpoint, SocketAddr) {
    let honest = Tls::new(presented).expect("tls");
    let forged = Tls::new(signer).expect("tls");
    let tls = Tls {
        certified: Arc::new(CertifiedKey::new(
            honest.certified.cert.clone(),
            Arc::clone(&forged.certified.key),
        )),
        ..honest
    };
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let endpoint = build_endpoint(socket, &tls).expect("endpoint");
    let addr = endpoint.local_addr().expect("local addr");
    (endpoint, addr)
}

#[tokio::test]
async fn a_server_presenting_a_key_it_cannot_sign_with_is_refused() {
    let victim = KeyPair::from_seed([17; 32]);
    let (server, server_addr) = forged_endpoint(&victim, &KeyPair::from_seed([18; 32]));
    let (client, _, _) = local_endpoint(19);

    let server_task = tokio::spawn(async move { accept(&server).await });

    let result = within(connect(&client, server_addr, &victim.public_key())).await;
    assert!(
        matches!(result, Err(QuicError::Handshake(_))),
        "expected a failed handshake, got {result:?}"
    );
    assert!(within(server_task).await.expect("server task").is_err());
}

#[tokio::test]
async fn a_client_presenting_a_key_it_cannot_sign_with_is_refused() {
    let (server, server_id, server_addr) = local_endpoint(20);
    let victim = KeyPair::from_seed([21; 32]);
    let (client, _) = forged_endpoint(&victim, &KeyPair::from_seed([22; 32]));

    let server_task = tokio::spawn(async move { accept(&server).await });
    // The client may see its side of the handshake complete before the
    // server checks its signature; the server must refuse it either way.
    let client_task = tokio::spawn(async move {
        if let Ok(connection) = connect(&client, server_addr, &server_id.public_key()).await {
            connection.closed().await;
        }
    });

    let accepted = within(server_task).await.expect("server task");
    assert!(accepted.is_err(), "the server accepted a forged client");
    within(client_task).await.expect("client task");
}

#[tokio::test]
async fn a_client_without_a_key_is_refused() {
    let (server, server_id, server_addr) = local_endpoint(23);
    let (client, _, _) = local_endpoint(24);
    let tls = Tls::new(&KeyPair::from_seed([24; 32])).expect("tls");
    let mut anonymous = rustls::ClientConfig::builder_with_provider(Arc::clone(&tls.provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(tls.verifier.clone())
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![ALPN.to_vec()];
    let anonymous = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(anonymous).expect("quic client config"),
    ));

    let server_task = tokio::spawn(async move { accept(&server).await });
    let name = server_name(&server_id.public_key());
    let connecting = client
        .connect_with(anonymous, server_addr, &name)
        .expect("connecting");
    let client_task = tokio::spawn(async move {
        if let Ok(connection) = connecting.await {
            connection.closed().await;
        }
    });

    let accepted = within(server_task).await.expect("server task");
    assert!(accepted.is_err(), "the server accepted an anonymous client");
    within(client_task).await.expect("client task");
}

#[tokio::test]
async fn a_bad_stream_header_is_refused() {
    let (server, server_id, server_addr) = local_endpoint(11);
    let (client, _, _) = local_endpoint(12);

    let server_task = tokio::spawn(async move {
        let connection = accept(&server).await.expect("server handshake");
        accept_stream(&connection).await.map(drop)
    });

    let connection = connect(&client, server_addr, &server_id.public_key())
        .await
        .expect("connect");
    let (mut send, _recv) = connection.open_bi().await.expect("open");
    send.write_all(&[0xff]).await.expect("write");
    let result = within(server_task).await.expect("server task");
    assert!(matches!(result, Err(QuicError::BadStreamHeader(0xff))));
}

#[tokio::test]
async fn named_streams_carry_their_names_and_bad_ones_are_refused() {
    let (server, server_id, server_addr) = local_endpoint(25);
    let (client, _, _) = local_endpoint(26);
    let server_task = tokio::spawn(async move {
        let connection = accept(&server).await.expect("server handshake");
        let next = async || read_stream_name(connection.accept_bi().await.expect("accept")).await;
        let (name, mut stream) = next().await.expect("named");
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello).await.expect("read");
        let bad_utf8 = next().await.map(|(n, _)| n);
        let bad_kind = next().await.map(|(n, _)| n);
        (name, hello, bad_utf8, bad_kind)
    });
    let connection = connect(&client, server_addr, &server_id.public_key())
        .await
        .expect("connect");
    let mut stream = open_named_stream(&connection, "chat/1")
        .await
        .expect("open");
    stream.write_all(b"hello").await.expect("write");
    let (mut send, _r1) = connection.open_bi().await.expect("open");
    send.write_all(&[NAMED_STREAM_HEADER, 2, 0xff, 0xfe])
        .await
        .expect("write");
    let (mut send2, _r2) = connection.open_bi().await.expect("open");
    send2.write_all(&[STREAM_HEADER, 0]).await.expect("write");
    let long = "x".repeat(256);
    assert!(matches!(
        open_named_stream(&connection, &long).await,
        Err(QuicError::StreamNameTooLong(256))
    ));
    let (name, hello, bad_utf8, bad_kind) = within(server_task).await.expect("server");
    assert_eq!(name, "chat/1");
    assert_eq!(&hello, b"hello");
    assert!(matches!(bad_utf8, Err(QuicError::BadStreamName)));
    assert!(matches!(
        bad_kind,
        Err(QuicError::BadStreamHeader(STREAM_HEADER))
    ));
}

#[test]
fn server_names_carry_keys() {
    let key = KeyPair::from_seed([13; 32]).public_key();
    let name = ServerName::try_from(server_name(&key)).expect("valid DNS name");
    assert_eq!(key_from_server_name(&name), Some(key));
    let other = ServerName::try_from("hyper").expect("valid DNS name");
    assert_eq!(key_from_server_name(&other), None);
}

#[test]
fn spki_round_trips_and_rejects_other_keys() {
    let key = KeyPair::from_seed([14; 32]).public_key();
    assert_eq!(key_from_spki(&spki(&key)), Some(key));
    assert_eq!(key_from_spki(&spki(&key)[1..]), None);
    let mut p256 = spki(&key);
    p256[8] = 0x71;
    assert_eq!(key_from_spki(&p256), None);
}

#[test]
fn endpoint_needs_a_runtime() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let result = endpoint(socket, &KeyPair::from_seed([15; 32]));
    assert!(matches!(result, Err(QuicError::NoRuntime)));
}

#[tokio::test]
async fn the_signer_matches_the_presented_key() {
    let identity = KeyPair::from_seed([16; 32]);
    let tls = Tls::new(&identity).expect("tls");
    assert_eq!(
        tls.certified.key.public_key().as_deref(),
        Some(spki(&identity.public_key()).as_slice())
    );
}

/// The kernel's cap on a socket buffer (`net.core.rmem_max` or
/// `wmem_max`), or `SOCKET_BUFFER` where it cannot be read.
#[cfg(target_os = "linux")]
fn kernel_cap(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(SOCKET_BUFFER)
}

#[cfg(target_os = "linux")]
#[test]
fn sockets_get_deep_kernel_queues() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    size_buffers(&socket).expect("buffers");
    let state = quinn::udp::UdpSocketState::new((&socket).into()).expect("state");
    let recv = state.recv_buffer_size((&socket).into()).expect("rcvbuf");
    let send = state.send_buffer_size((&socket).into()).expect("sndbuf");
    // Linux reports twice what it granted (the rest is its bookkeeping).
    assert!(
        recv >= SOCKET_BUFFER.min(kernel_cap("rmem_max")),
        "rcvbuf {recv}"
    );
    assert!(
        send >= SOCKET_BUFFER.min(kernel_cap("wmem_max")),
        "sndbuf {send}"
    );
}

/// Loopback allows 65,535-byte datagrams, so a bulk transfer's sender
/// must climb to `MAX_UDP_PAYLOAD` and stay there: no GSO batch may exceed
/// what one `sendmsg` takes, or its loss sets off the black-hole detector.
#[tokio::test]
async fn a_loopback_transfer_runs_at_the_largest_payload() {
    let (server, _, server_addr) = local_endpoint(1);
    let (client, _, _) = local_endpoint(2);
    let server_task = tokio::spawn(async move {
        let connection = accept(&server).await.expect("server handshake");
        let mut stream = accept_stream(&connection).await.expect("accept stream");
        let mut received = 0;
        let mut buffer = vec![0; 1 << 16];
        loop {
            match stream.read(&mut buffer).await.expect("read") {
                0 => break,
                read => received += read,
            }
        }
        stream.write_all(b"!").await.expect("answer");
        stream.shutdown().await.expect("finish");
        connection.closed().await;
        received
    });
    let connection = within(connect(
        &client,
        server_addr,
        &KeyPair::from_seed([1; 32]).public_key(),
    ))
    .await
    .expect("connect");
    let block = vec![7u8; 1 << 16];
    let mut stream = open_stream(&connection).await.expect("open stream");
    for _ in 0..512 {
        within(stream.write_all(&block)).await.expect("write");
    }
    stream.shutdown().await.expect("finish");
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer))
        .await
        .expect("answer");
    let path = connection.stats().path;
    connection.close(VarInt::from_u32(0), b"done");
    assert_eq!(within(server_task).await.expect("server task"), 512 << 16);
    assert_eq!(path.black_holes_detected, 0, "{path:?}");
    assert_eq!(path.current_mtu, MAX_UDP_PAYLOAD, "{path:?}");
}
