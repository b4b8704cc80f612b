//! Streams on a QUIC connection: the replication stream (header byte 1)
//! and named application streams (header byte 2, then the name).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use quinn::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{NAMED_STREAM_HEADER, QuicError, STREAM_HEADER};

/// One bidirectional QUIC stream as a single byte stream.
///
/// Reads return what the peer wrote on this stream (EOF once it shut its
/// side down); writes are reliable and ordered. `poll_shutdown` finishes
/// our sending side. Dropping the value finishes the sending side and
/// stops the receiving side. The stream keeps its connection alive.
#[derive(Debug)]
pub struct QuicStream {
    /// Our sending half.
    send: SendStream,
    /// Our receiving half.
    recv: RecvStream,
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.get_mut().send), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().send), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().send), cx)
    }
}

/// Opens a new stream to the peer (the initiator side).
///
/// The peer's [`accept_stream`] returns it as soon as the header byte this
/// sends arrives, so either side may speak first afterwards. Fails with
/// [`QuicError::ConnectionLost`] if the connection is gone.
pub(crate) async fn open_stream(connection: &quinn::Connection) -> Result<QuicStream, QuicError> {
    let (mut send, recv) = connection
        .open_bi()
        .await
        .map_err(QuicError::ConnectionLost)?;
    send.write_all(&[STREAM_HEADER])
        .await
        .map_err(write_error)?;
    Ok(QuicStream { send, recv })
}

/// Accepts the next stream the peer opened with [`open_stream`] (the
/// responder side).
///
/// Waits until the peer opens a stream and its header byte arrives; a
/// stream with another header fails with [`QuicError::BadStreamHeader`]
/// (the stream is then dropped, the connection stays up). A peer that opens
/// a stream and sends nothing keeps this waiting: put a timeout around it
/// if the peer is not trusted. Fails with [`QuicError::ConnectionLost`] once
/// the connection is gone.
pub(crate) async fn accept_stream(connection: &quinn::Connection) -> Result<QuicStream, QuicError> {
    let (send, mut recv) = connection
        .accept_bi()
        .await
        .map_err(QuicError::ConnectionLost)?;
    let mut header = [0u8; 1];
    recv.read_exact(&mut header).await.map_err(read_error)?;
    match header {
        [STREAM_HEADER] => Ok(QuicStream { send, recv }),
        [other] => Err(QuicError::BadStreamHeader(other)),
    }
}

fn write_error(error: quinn::WriteError) -> QuicError {
    match error {
        quinn::WriteError::ConnectionLost(lost) => QuicError::ConnectionLost(lost),
        other => QuicError::Stream(other.into()),
    }
}

fn read_error(error: quinn::ReadExactError) -> QuicError {
    match error {
        quinn::ReadExactError::FinishedEarly(_) => QuicError::NoStreamHeader,
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(lost)) => {
            QuicError::ConnectionLost(lost)
        }
        quinn::ReadExactError::ReadError(other) => QuicError::Stream(other.into()),
    }
}

/// Opens an application stream named `name` beside the replication
/// stream (the peer's [`accept_named_stream`] returns it with the name).
/// Fails with [`QuicError::StreamNameTooLong`] past 255 bytes.
pub(crate) async fn open_named_stream(
    connection: &quinn::Connection,
    name: &str,
) -> Result<QuicStream, QuicError> {
    let length = u8::try_from(name.len()).map_err(|_| QuicError::StreamNameTooLong(name.len()))?;
    let (mut send, recv) = connection
        .open_bi()
        .await
        .map_err(QuicError::ConnectionLost)?;
    let header = [&[NAMED_STREAM_HEADER, length][..], name.as_bytes()].concat();
    send.write_all(&header).await.map_err(write_error)?;
    Ok(QuicStream { send, recv })
}

/// Reads the name of an application stream the peer opened with
/// [`open_named_stream`] (the halves `accept_bi` gave): its name and the
/// stream. A stream with another header or a name that is not UTF-8 fails
/// (and is dropped; the connection stays up). Put a timeout around it for
/// untrusted peers.
pub(crate) async fn read_stream_name(
    (send, mut recv): (SendStream, RecvStream),
) -> Result<(String, QuicStream), QuicError> {
    let mut header = [0u8; 2];
    recv.read_exact(&mut header).await.map_err(read_error)?;
    let [kind, length] = header;
    if kind != NAMED_STREAM_HEADER {
        return Err(QuicError::BadStreamHeader(kind));
    }
    let mut name = vec![0u8; usize::from(length)];
    recv.read_exact(&mut name).await.map_err(read_error)?;
    let name = String::from_utf8(name).map_err(|_| QuicError::BadStreamName)?;
    Ok((name, QuicStream { send, recv }))
}
