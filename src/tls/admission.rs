//! Admission before the handshake: the one thing known about a new connection is its peer
//! address, and a TLS handshake costs the gateway far more than it costs the client. A
//! peer that opens connections faster than its quota is closed before any TLS is read.

use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::IntCounter;

pub struct ConnectionAdmission {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    refused: IntCounter,
}

impl std::fmt::Debug for ConnectionAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionAdmission")
    }
}

impl ConnectionAdmission {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, refused: IntCounter) -> Self {
        Self {
            per_address: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            refused,
        }
    }

    /// Whether a new connection from `peer` may go on to its handshake. A connection whose
    /// peer address cannot be read is refused: it could not be counted.
    pub fn admit(&self, peer: Option<IpAddr>) -> bool {
        let admitted = peer.is_some_and(|address| self.per_address.check_key(&address).is_ok());
        if !admitted {
            self.refused.inc();
        }
        // Keys of peers that have not been seen for a while are dropped, so that many
        // addresses cannot grow the table without bound.
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_second: u32, burst: u32) -> ConnectionAdmission {
        ConnectionAdmission::new(
            NonZeroU32::new(per_second).unwrap(),
            NonZeroU32::new(burst).unwrap(),
            IntCounter::new("refused", "refused").unwrap(),
        )
    }

    #[test]
    fn a_peer_beyond_its_burst_is_refused_and_others_are_not() {
        let admission = admission(1, 3);
        let flooding: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let admitted = (0..10).filter(|_| admission.admit(Some(flooding))).count();
        assert_eq!(admitted, 3);
        assert!(admission.admit(Some(other)));
        assert_eq!(admission.refused.get(), 7);
    }

    #[test]
    fn a_connection_without_a_peer_address_is_refused() {
        assert!(!admission(10, 10).admit(None));
    }
}
