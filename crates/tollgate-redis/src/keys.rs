//! Counter key names and their Cluster slots.

use tollgate_core::policy::Rule;

/// The counter key of (`rule`, `key`): `<prefix>:{<rule seed>:<key>}`. The braces make the
/// whole counter name the Cluster hash tag, so its penalty box (`…:b`) shares its slot.
pub(crate) fn counter(prefix: &str, rule: &Rule, key: &str) -> String {
    format!("{prefix}:{{{:016x}:{key}}}", rule.seed())
}

/// The penalty box of a counter.
pub(crate) fn penalty(counter: &str) -> String {
    format!("{counter}:b")
}

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The Cluster slot of `key`: CRC16 of its hash tag (the text between the first `{` and
/// the next `}`, when not empty), else of the whole key, modulo 16384.
pub(crate) fn slot(key: &str) -> u16 {
    let tagged = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty());
    CRC16.checksum(tagged.unwrap_or(key).as_bytes()) % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_specification() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot("123456789"), 12739);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"));
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    }
}
