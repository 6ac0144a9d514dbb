//! How far apart two shards' CPUs are, for choosing whom to steal from (nearest first).
//!
//! Read from Linux sysfs (`/sys/devices/system/cpu/cpuN/topology/`): two CPUs of one core (SMT
//! siblings) share their caches, two cores of one package share the last-level cache, two
//! packages share nothing. Where the topology is unknown (an unpinned shard, no sysfs) every
//! peer is at the same, middle distance, and the choice among them stays random.

use crate::config::cpu_place as place;

/// Distance between SMT siblings of one core.
pub(crate) const SAME_CORE: u8 = 0;
/// Distance between cores of one package (or unknown).
pub(crate) const SAME_PACKAGE: u8 = 1;
/// Distance between packages.
pub(crate) const OTHER_PACKAGE: u8 = 2;

/// The distance of every pair of shards pinned to `cpus` (`None`: unpinned).
pub(crate) fn distances(cpus: &[Option<usize>]) -> Vec<Vec<u8>> {
    let places: Vec<Option<(u32, u32)>> = cpus.iter().map(|c| c.and_then(place)).collect();
    places
        .iter()
        .map(|a| {
            places
                .iter()
                .map(|b| match (a, b) {
                    (Some((pa, ca)), Some((pb, cb))) if pa == pb && ca == cb => SAME_CORE,
                    (Some((pa, _)), Some((pb, _))) if pa != pb => OTHER_PACKAGE,
                    _ => SAME_PACKAGE,
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_cpus_are_all_at_the_middle_distance() {
        let d = distances(&[None, None, None]);
        assert!(d.iter().flatten().all(|&x| x == SAME_PACKAGE));
    }

    #[test]
    fn a_cpu_is_at_distance_zero_from_itself_when_sysfs_knows_it() {
        let d = distances(&[Some(0), Some(0)]);
        if place(0).is_some() {
            assert_eq!(d[0][1], SAME_CORE);
        } else {
            assert_eq!(d[0][1], SAME_PACKAGE);
        }
    }
}
