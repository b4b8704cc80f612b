//! Checks of argument values that clap runs while parsing, so a bad value
//! is refused at once, naming the value.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::CliError;

/// A `HOST:PORT` (or `IP:PORT`, `[IPv6]:PORT`) argument: checked for its
/// form while parsing (a missing or bad port is refused at once), resolved
/// when used.
pub fn address(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.contains(',') {
        return Err("one address only, not a list".into());
    }
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(text.to_string());
    }
    if text.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Err("a port is missing (IP:PORT)".into());
    }
    match text.rsplit_once(':') {
        None => Err("a port is missing (HOST:PORT)".into()),
        Some(("", _)) => Err("the host is missing (HOST:PORT)".into()),
        Some((_, port)) if port.parse::<u16>().is_err() => {
            Err(format!("'{port}' is not a port (0-65535)"))
        }
        Some(_) => Ok(text.to_string()),
    }
}

/// A comma-separated list of [`address`]es.
pub fn address_list(text: &str) -> Result<String, String> {
    let items: Vec<&str> = split_list(text).collect();
    if items.is_empty() {
        return Err("no address in the list (IP:PORT[,IP:PORT...])".into());
    }
    for item in items {
        address(item).map_err(|why| format!("'{item}': {why}"))?;
    }
    Ok(text.to_string())
}

/// The items of a comma-separated list.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Resolves an [`address`] (IPv4 first); an address that does not resolve
/// is a [`CliError::BadAddress`] naming it.
pub fn resolve(addr: &str) -> Result<SocketAddr, CliError> {
    let bad = |why: String| CliError::BadAddress {
        addr: addr.to_string(),
        why,
    };
    address(addr).map_err(bad)?;
    addr.to_socket_addrs()
        .map_err(|e| bad(format!("it does not resolve ({e})")))?
        .min_by_key(SocketAddr::is_ipv6)
        .ok_or_else(|| bad("it resolves to no address".into()))
}

/// Resolves an [`address`] to one address of each family it has: an IP
/// gives itself, a name resolving to IPv4 and IPv6 addresses gives the
/// first of each (IPv4 first), so that a dual-stack swarm bootstraps both
/// of its DHT nodes from it.
pub fn resolve_each_family(addr: &str) -> Result<Vec<SocketAddr>, CliError> {
    let first = resolve(addr)?;
    if addr.trim().parse::<SocketAddr>().is_ok() {
        return Ok(vec![first]);
    }
    let v6 = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut all| all.find(SocketAddr::is_ipv6));
    Ok(std::iter::once(first)
        .chain(v6.filter(|_| first.is_ipv4()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        for good in [
            "127.0.0.1:9000",
            "[::1]:1",
            "localhost:0",
            "example.org:443",
        ] {
            assert_eq!(address(good).as_deref(), Ok(good));
        }
        for (bad, why) in [
            ("nonsense", "a port is missing"),
            ("127.0.0.1", "a port is missing (IP:PORT)"),
            ("::1", "a port is missing (IP:PORT)"),
            ("host:port", "'port' is not a port"),
            ("host:70000", "'70000' is not a port"),
            (":80", "the host is missing"),
        ] {
            let err = address(bad).expect_err(bad);
            assert!(err.starts_with(why), "{bad}: {err}");
        }
        assert!(address_list("127.0.0.1:1, 127.0.0.1:2").is_ok());
        let err = address_list("127.0.0.1:1,nope").expect_err("bad item");
        assert!(err.starts_with("'nope': a port is missing"), "{err}");
        assert!(address_list(" , ").is_err());
    }

    #[test]
    fn resolving_names_the_address() {
        assert_eq!(
            resolve("127.0.0.1:7").expect("resolves"),
            SocketAddr::from(([127, 0, 0, 1], 7))
        );
        assert_eq!(
            resolve_each_family("[::1]:7").expect("resolves"),
            vec![SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 7))]
        );
        let err = resolve("no-such-host.invalid:1").expect_err("does not resolve");
        assert!(err.to_string().contains("no-such-host.invalid:1"), "{err}");
    }
}
