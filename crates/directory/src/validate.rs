//! Validation of everything a caller hands the directory: namespace and group names, instance
//! ids, IP addresses, ports, activation ids. Each check returns a clear
//! [`DirectoryError::Invalid`] naming the field and the rule.
//!
//! Instance ids end up in the seed's `name=ip&name=ip` file (`/addrMap/addrMap.txt`), so `=`,
//! `&`, newlines and control characters are refused: they would break that format.

use std::net::IpAddr;

use crate::error::DirectoryError;
use crate::proto::Peer;

/// Longest namespace, group, instance id or activation id accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

fn check_text(field: &str, value: &str, allow_empty: bool) -> Result<(), DirectoryError> {
    if value.is_empty() {
        if allow_empty {
            return Ok(());
        }
        return Err(DirectoryError::invalid(format!(
            "{field} must not be empty"
        )));
    }
    // Counting stops early so that a huge value costs no more than a short one.
    if value.chars().nth(MAX_NAME_CHARS).is_some() {
        return Err(DirectoryError::invalid(format!(
            "{field} is longer than {MAX_NAME_CHARS} characters ({} bytes)",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(DirectoryError::invalid(format!(
            "{field} must not contain control characters (found {c:?})"
        )));
    }
    Ok(())
}

/// A namespace or group name: non-empty, at most 256 characters, no control characters.
pub fn check_name(field: &str, value: &str) -> Result<(), DirectoryError> {
    check_text(field, value, false)
}

/// An instance id: a name that also has no `=` or `&` (the separators of `name=ip&name=ip`).
pub fn check_instance_id(value: &str) -> Result<(), DirectoryError> {
    check_text("instance id", value, false)?;
    if let Some(c) = value.chars().find(|c| *c == '=' || *c == '&') {
        return Err(DirectoryError::invalid(format!(
            "instance id must not contain {c:?} (it separates entries of the peer file \
             `name=ip&name=ip`)"
        )));
    }
    Ok(())
}

/// Checks `peer` and normalizes it: the IP is rewritten in its canonical form.
pub fn check_peer(peer: &mut Peer) -> Result<(), DirectoryError> {
    check_instance_id(&peer.id)?;
    let ip: IpAddr = peer.ip.trim().parse().map_err(|_| {
        DirectoryError::invalid(format!(
            "ip {:?} of instance {:?} is not an IP address",
            truncate(&peer.ip),
            peer.id
        ))
    })?;
    peer.ip = ip.to_string();
    if peer.port > u32::from(u16::MAX) {
        return Err(DirectoryError::invalid(format!(
            "port {} of instance {:?} is not a TCP port (0..=65535)",
            peer.port, peer.id
        )));
    }
    check_text("activation id", &peer.activation_id, true)?;
    Ok(())
}

/// At most 64 characters of `s`, for error messages about hostile input.
fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(64).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, ip: &str) -> Peer {
        Peer {
            id: id.into(),
            ip: ip.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names() {
        assert!(check_name("namespace", "guest").is_ok());
        assert!(check_name("namespace", &"n".repeat(256)).is_ok());
        let e = check_name("namespace", &"n".repeat(257)).unwrap_err();
        assert!(e.to_string().contains("longer than 256"), "{e}");
        let e = check_name("group", "").unwrap_err();
        assert!(e.to_string().contains("group must not be empty"), "{e}");
        assert!(check_name("group", "a\nb").is_err());
        assert!(check_name("group", "a:b/c d").is_ok());
    }

    #[test]
    fn instance_ids() {
        assert!(check_instance_id("myname0").is_ok());
        assert!(check_instance_id("42").is_ok());
        assert!(check_instance_id("é-ü_1.x").is_ok());
        for bad in ["", "a=b", "a&b", "a\nb", "a\rb", "a\0b", "a\tb"] {
            assert!(check_instance_id(bad).is_err(), "{bad:?} accepted");
        }
        let e = check_instance_id("a=b").unwrap_err();
        assert!(e.to_string().contains("'='"), "{e}");
        let big = "x".repeat(10 * 1024);
        let e = check_instance_id(&big).unwrap_err();
        assert!(e.to_string().contains("longer than 256"), "{e}");
        assert!(e.to_string().len() < 200, "error message echoes the input");
    }

    #[test]
    fn peers() {
        let mut p = peer("a", "10.0.0.1");
        check_peer(&mut p).unwrap();
        let mut p = peer("a", " ::1 ");
        check_peer(&mut p).unwrap();
        assert_eq!(p.ip, "::1");
        for bad in ["", "10.0.0", "host.example", "10.0.0.1:80", "300.1.1.1"] {
            let e = check_peer(&mut peer("a", bad)).unwrap_err();
            assert!(e.to_string().contains("not an IP address"), "{bad}: {e}");
        }
        let mut p = peer("a", "10.0.0.1");
        p.port = 70000;
        assert!(check_peer(&mut p).is_err());
        let mut p = peer("a", "10.0.0.1");
        p.activation_id = "x".repeat(300);
        assert!(check_peer(&mut p).is_err());
    }
}
