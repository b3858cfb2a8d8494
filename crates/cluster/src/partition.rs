//! Where work goes: each trajectory's side and key hash to a fixed partition, and each
//! partition to one live node. Publishers and owners compute the same answer, so no
//! routing table is shared.

use plumbline_trajectory::Side;

/// The partition of the trajectories of `side` keyed `key`. FNV-1a over the side and the
/// key: fixed by this definition, never by a library's hasher, because nodes of different
/// builds must agree for the life of the stream.
pub fn partition_of(side: Side, key: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in side
        .as_str()
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(key.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// The subject a partition's events are published on.
pub fn events_subject(partition: u32) -> String {
    format!("plumbline.events.{partition}")
}

/// The subject a partition's commits (its checkpoint history) are published on.
pub fn commits_subject(partition: u32) -> String {
    format!("plumbline.commits.{partition}")
}

/// Which live node should own `partition`: the live nodes in name order, dealt out in
/// turn. Every node computes this from the same membership, so they agree without a
/// leader; the leases make it safe while views of membership differ for a moment.
pub fn owner_of(partition: u32, live: &[String]) -> Option<&str> {
    if live.is_empty() {
        return None;
    }
    Some(&live[partition as usize % live.len()])
}

/// A name that is safe as a JetStream key and subject token.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_fixed_by_definition_and_spread() {
        // The values are part of the stream format: a change re-partitions live clusters.
        assert_eq!(
            partition_of(Side::Actor, "alice", 16),
            partition_of(Side::Actor, "alice", 16)
        );
        assert_ne!(
            partition_of(Side::Actor, "vault", 1 << 20),
            partition_of(Side::System, "vault", 1 << 20),
            "the side is part of the key"
        );
        let mut seen = [0u32; 8];
        for i in 0..800 {
            seen[partition_of(Side::Actor, &format!("user-{i}"), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (50..150).contains(n)), "{seen:?}");
    }

    #[test]
    fn every_partition_has_one_owner_among_the_live_nodes() {
        let live: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let owners: Vec<&str> = (0..6).map(|p| owner_of(p, &live).unwrap()).collect();
        assert_eq!(owners, ["a", "b", "c", "a", "b", "c"]);
        assert_eq!(owner_of(3, &[]), None);
    }

    #[test]
    fn node_names_are_checked_as_keys() {
        assert!(is_valid_name("node-1_a"));
        assert!(!is_valid_name("node.1"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
    }
}
