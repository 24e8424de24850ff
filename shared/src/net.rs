//! Which network addresses Herald may contact on a tenant's behalf.
//!
//! In production every outbound call (web push, webhooks, SMS, SMTP providers) connects only
//! to globally routable addresses: a tenant (or a user registering a push subscription) must
//! not make Herald reach the machines around it. The check runs on the addresses a name
//! resolved to, at connect time, so a DNS name pointing at 127.0.0.1 is refused like the
//! literal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast, or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        // 0.0.0.0/8 "this network", 100.64.0.0/10 carrier-grade NAT, 192.0.0.0/24 protocol
        // assignments, 198.18.0.0/15 benchmarking, 240.0.0.0/4 reserved.
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation,
        // 64:ff9b:1::/48 local NAT64, ::/96 IPv4-compatible (deprecated).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 0x0001)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

/// Whether a URL's host names this machine or a private network on its face: a non-public IP
/// literal, `localhost`, or a name under a suffix reserved for local use. Input validation
/// refuses these in production; the connect-time check ([`is_public`]) stops the rest.
pub fn looks_private(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
        url::Host::Domain(name) => {
            // Hosts of non-web schemes (`smtp://`) stay text, IP literals included.
            if let Ok(ip) = name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                return !is_public(ip);
            }
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix))
                || !name.contains('.')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_globally_routable_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn local_names_look_private() {
        let private = |s: &str| looks_private(&url::Url::parse(s).unwrap().host().unwrap());
        for url in [
            "http://localhost/",
            "http://api.localhost/",
            "http://printer.local/",
            "http://intranet/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://metadata.google.internal/",
            "smtp://127.0.0.1:25",
            "smtp://[::1]:25",
        ] {
            assert!(private(url), "{url}");
        }
        assert!(!private("https://hooks.example.com/"));
    }
}
