//! `hyper-cli drive serve`: a drive over HTTP on localhost (axum): files
//! with their content types, byte ranges (206, so video seeks), a listing
//! for a folder, or its `index.html`. With `--connect`, every file is
//! fetched sparsely from the peer when it is asked for.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_drive::fetch::ReplicationFetch;
use hyper_drive::{ChildKind, Drive, DrivePath, Fetch};

use crate::CliError;

/// What a request is served from.
struct Site {
    drive: Drive,
    fetch: Option<ReplicationFetch>,
}

/// A `Range: bytes=…` header resolved against a file of `size` bytes: the
/// half-open range to send, `Err(())` when it cannot be satisfied (416),
/// `None` when there is no usable header (send everything). One range only;
/// a multi-range request gets the whole file.
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(last)) if start <= last => (start, last.saturating_add(1).min(size)),
        (Ok(start), Err(_)) if b.is_empty() => (start, size),
        (Err(_), Ok(suffix)) if a.is_empty() => (size.saturating_sub(suffix), size),
        _ => return None,
    };
    Some(if range.0 < range.1 {
        Ok(range)
    } else {
        Err(())
    })
}

/// The content type of a file name.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn status(code: StatusCode, text: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response()
}

impl Site {
    /// Runs a read, fetching what it lacks from the peer if there is one.
    async fn read<T>(
        &self,
        op: impl FnMut(&Drive) -> hyper_drive::Result<T>,
    ) -> hyper_drive::Result<T> {
        match &self.fetch {
            Some(f) => self.drive.with_fetch(f, op).await,
            None => {
                let mut op = op;
                op(&self.drive)
            }
        }
    }

    async fn respond(&self, uri: &Uri, headers: &HeaderMap) -> hyper_drive::Result<Response> {
        let raw = percent_decode(uri.path());
        let path = DrivePath::new(&raw)?;
        if let Some((at, entry)) = self.read(|d| d.stat(path.as_str())).await? {
            return self.file(&at, entry.size, headers).await;
        }
        let children = self.read(|d| d.readdir(path.as_str())).await?;
        if children.is_empty() {
            return Ok(status(
                StatusCode::NOT_FOUND,
                &format!("{path} is not in this drive"),
            ));
        }
        if !raw.ends_with('/') {
            // Relative links in the folder resolve against "folder/".
            let to = format!("{}/", path.as_str().trim_end_matches('/'));
            return Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response());
        }
        let index = path.child("index.html")?;
        if let Some((at, entry)) = self.read(|d| d.stat(index.as_str())).await? {
            return self.file(&at, entry.size, headers).await;
        }
        let mut html = format!(
            "<!doctype html><title>{0}</title><h1>{0}</h1><ul>",
            escape(path.as_str())
        );
        for c in children {
            let slash = if c.kind == ChildKind::Folder { "/" } else { "" };
            let name = escape(&c.name);
            html.push_str(&format!(
                "<li><a href=\"{name}{slash}\">{name}{slash}</a></li>"
            ));
        }
        html.push_str("</ul>");
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
    }

    async fn file(
        &self,
        at: &DrivePath,
        size: u64,
        headers: &HeaderMap,
    ) -> hyper_drive::Result<Response> {
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_range(v, size));
        let (code, (start, end)) = match range {
            None => (StatusCode::OK, (0, size)),
            Some(Ok(r)) => (StatusCode::PARTIAL_CONTENT, r),
            Some(Err(())) => {
                let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(r);
            }
        };
        let stream = self
            .read(|d| d.read_stream(at.as_str(), start, Some(end)))
            .await?;
        let blobs = self.drive.blobs().clone();
        let blocks = stream.blocks().to_vec();
        // From a peer: the first blocks before answering (a failure is an
        // error status), the rest as the reader gets to them.
        if let (Some(f), Some(first)) = (&self.fetch, blocks.first()) {
            f.fetch_ranges(&blobs, &window(&blocks, first.start))
                .await?;
        }
        let state = FileBody {
            stream,
            fetch: self.fetch.clone(),
            blobs,
            blocks,
            last_missing: None,
        };
        // One block at a time, however large the file.
        let body = Body::from_stream(futures_util::stream::unfold(state, FileBody::next));
        let mut response = Response::new(body);
        *response.status_mut() = code;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(at.name().unwrap_or(""))),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        if code == StatusCode::PARTIAL_CONTENT
            && let Ok(v) =
                HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end.saturating_sub(1)))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
        Ok(response)
    }
}

/// Blocks a body fetches from a peer ahead of its reader, at most: a
/// reader that stops (a player seeking elsewhere hangs up) stops the fetch
/// within this many blocks of where it stopped.
const AHEAD: u64 = 16;

/// The first [`AHEAD`] blocks of `blocks` (merged ranges, ascending) at or
/// after `from`.
fn window(blocks: &[Range<u64>], from: u64) -> Vec<Range<u64>> {
    let mut left = AHEAD;
    let mut out = Vec::new();
    for r in blocks {
        let start = r.start.max(from);
        if left == 0 {
            break;
        }
        if start >= r.end {
            continue;
        }
        let end = r.end.min(start.saturating_add(left));
        left -= end - start;
        out.push(start..end);
    }
    out
}

/// A file body being sent: its stream, and on a replica what to fetch.
struct FileBody {
    stream: hyper_drive::ReadStream,
    fetch: Option<ReplicationFetch>,
    blobs: hyper_core::Core,
    /// The blocks the body reads (merged ranges).
    blocks: Vec<Range<u64>>,
    /// The block last fetched because it was missing: missing again is an
    /// error, never a loop.
    last_missing: Option<u64>,
}

impl FileBody {
    /// The next chunk, fetching the next [`window`] when the reader
    /// reaches a block not stored here.
    async fn next(mut self) -> Option<(hyper_drive::Result<Vec<u8>>, Self)> {
        loop {
            let missing = match self.stream.next_chunk() {
                Ok(Some(chunk)) => return Some((Ok(chunk), self)),
                Ok(None) => return None,
                Err(hyper_drive::Error::Missing { core, index })
                    if core == self.blobs.key() && self.last_missing != Some(index) =>
                {
                    index
                }
                Err(e) => return Some((Err(e), self)),
            };
            let Some(f) = &self.fetch else {
                return Some((
                    Err(hyper_drive::Error::Missing {
                        core: self.blobs.key(),
                        index: missing,
                    }),
                    self,
                ));
            };
            if let Err(e) = f
                .fetch_ranges(&self.blobs, &window(&self.blocks, missing))
                .await
            {
                return Some((Err(e), self));
            }
            self.last_missing = Some(missing);
        }
    }
}

/// `%XX` escapes of a URL path decoded (invalid ones are kept as they are).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves `drive` on `listen` until stopped, printing `serving on
/// http://ADDR/` once it accepts connections.
pub async fn serve(
    drive: Drive,
    fetch: Option<ReplicationFetch>,
    listen: &str,
) -> Result<(), CliError> {
    let site = Arc::new(Site { drive, fetch });
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let site = site.clone();
        async move {
            match site.respond(&uri, &headers).await {
                Ok(r) => r,
                Err(e @ hyper_drive::Error::InvalidPath { .. }) => {
                    status(StatusCode::BAD_REQUEST, &e.to_string())
                }
                Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
    });
    let listener =
        tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::BadAddress {
                addr: listen.to_string(),
                why: e.to_string(),
            })?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "serving on http://{addr}/")?;
        out.flush()?;
    }
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(Ok((0, 100))));
        assert_eq!(parse_range("bytes=900-", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=-100", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some(Ok((990, 1000))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=-0", 1000), Some(Err(())));
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // block ranges, compared as lists
    fn windows_of_blocks_ahead() {
        let blocks = [0..3, 10..30, 40..41];
        assert_eq!(window(&blocks, 0), [0..3, 10..23]);
        assert_eq!(window(&blocks, 2), [2..3, 10..25]);
        assert_eq!(window(&blocks, 20), [20..30, 40..41]);
        assert_eq!(window(&blocks, 41), Vec::<Range<u64>>::new());
        assert_eq!(window(&[5..6, 8..9], 6), [8..9]);
        assert_eq!(window(&[0..100], 50), [50..66]);
        // Against the blocks one by one, for every start, on lists of
        // ranges of many shapes.
        let mut x = 0x9e37_79b9_u64;
        for _ in 0..200 {
            let mut ranges = Vec::new();
            let mut at = 0;
            for _ in 0..(x % 5) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (gap, len) = (x % 4, 1 + x % 23);
                ranges.push(at + gap..at + gap + len);
                at += gap + len + 1;
            }
            x = x.wrapping_add(1);
            let flat: Vec<u64> = ranges.iter().flat_map(|r| r.clone()).collect();
            for from in 0..at + 2 {
                let got: Vec<u64> = window(&ranges, from).into_iter().flatten().collect();
                let want: Vec<u64> = flat
                    .iter()
                    .copied()
                    .filter(|&b| b >= from)
                    .take(16)
                    .collect();
                assert_eq!(got, want, "{ranges:?} from {from}");
            }
        }
    }

    #[test]
    fn types_and_escapes() {
        assert_eq!(content_type("a/INDEX.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("v.mp4"), "video/mp4");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(percent_decode("/a%20b/%E6%97%A5%zz"), "/a b/日%zz");
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
