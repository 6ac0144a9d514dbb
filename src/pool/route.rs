//! How a request picks its member: [`Route`], and the fixed key hash behind key affinity.

/// Which member of a [`Pool`](super::Pool) a request goes to.
///
/// Broadcast is not a route (its answer is one result per member): see
/// [`Pool::broadcast`](super::Pool::broadcast).
///
/// # Examples
///
/// ```
/// use coreactor::pool::Route;
///
/// // A byte key is hashed once with FNV-1a 64 into a `u64` key.
/// assert_eq!(Route::key_bytes(b"user:42"), Route::key_bytes(b"user:42"));
/// assert_ne!(Route::key_bytes(b"user:42"), Route::key_bytes(b"user:43"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// Members in index order, cycling: 0, 1, …, size − 1, 0, … The counter is shared by every
    /// clone of the pool, so concurrent callers interleave but each member still gets every
    /// `size`-th request.
    RoundRobin,
    /// Key affinity: the same key always reaches the same member while the pool's size is
    /// unchanged — across calls, threads, pool clones and processes (the hash is fixed, see
    /// [`key_index`]).
    Key(u64),
    /// The member with the fewest queued messages
    /// ([`Addr::mailbox_len`](crate::Addr::mailbox_len), the real depth: accepted and not yet
    /// handled). Ties go to the first such member scanning from a rotating start, so an idle
    /// pool spreads its requests. Stopped members are never picked while a live one remains.
    /// The depths are a snapshot: concurrent senders may pick the same member.
    LeastLoaded,
    /// The member with this index (`0..size`, the order of
    /// [`Pool::members`](super::Pool::members)).
    Member(usize),
}

impl Route {
    /// Key affinity for a byte key (a primary key, a table name): the key is
    /// [`fnv1a_64`]`(key)`, then routed like [`Route::Key`].
    pub fn key_bytes(key: &[u8]) -> Route {
        Route::Key(fnv1a_64(key))
    }
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes` (offset basis `0xcbf29ce484222325`, prime
/// `0x100000001b3`). Fixed and seedless on purpose: key affinity must give the same member in
/// every process, which std's randomly seeded `RandomState` would not. It is not a defence
/// against keys chosen to collide.
///
/// # Examples
///
/// ```
/// // Published test vectors.
/// assert_eq!(coreactor::pool::fnv1a_64(b""), 0xcbf29ce484222325);
/// assert_eq!(coreactor::pool::fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The member index key `key` maps to in a pool of `size` members:
/// `⌊fmix64(fnv1a_64(key.to_le_bytes())) × size / 2⁶⁴⌋`, where `fmix64` is MurmurHash3's
/// 64-bit finalizer (`h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33;
/// h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33`).
///
/// The multiply-shift reduction uses the high bits. FNV-1a alone does not mix the last bytes it
/// reads into its high bits (the final multiply by its prime moves a byte up by at most 40
/// bits), and the last byte of a little-endian key is its most significant: keys that differ
/// only there (a table or tenant id in the top byte, a common layout) all went to one member.
/// The finalizer makes every output bit depend on every input bit.
///
/// # Panics
///
/// If `size` is zero.
///
/// # Examples
///
/// ```
/// use coreactor::pool::key_index;
///
/// let member = key_index(42, 4);
/// assert!(member < 4);
/// assert_eq!(member, key_index(42, 4));
/// ```
pub fn key_index(key: u64, size: usize) -> usize {
    assert!(size > 0, "a pool has at least one member");
    let hash = fmix64(fnv1a_64(&key.to_le_bytes()));
    ((u128::from(hash) * size as u128) >> 64) as usize
}

/// MurmurHash3's 64-bit finalizer: a bijection whose every output bit depends on every input
/// bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Spreads 9 000 keys `shape(0..9000)` over pools of 1 to 16 members, each member within
    /// ±20 % of an even share.
    fn assert_spread(what: &str, shape: impl Fn(u64) -> u64) {
        for size in 1..=16 {
            let mut counts = vec![0usize; size];
            for i in 0..9_000u64 {
                counts[key_index(shape(i), size)] += 1;
            }
            let even = 9_000 / size;
            for c in counts {
                assert!(
                    c > even * 8 / 10 && c < even * 12 / 10,
                    "{what}, size {size}: {c} keys on one member, {even} would be even"
                );
            }
        }
    }

    #[test]
    fn key_index_in_range_and_spread() {
        assert_spread("sequential keys", |i| i);
        assert_spread("multiples of 4096", |i| i << 12);
        assert_spread("keys differing in the upper half", |i| i << 32 | 7);
        // The shape FNV-1a alone sent to one member: only the top byte (and the byte below it)
        // varies.
        assert_spread("keys differing in the top 16 bits", |i| {
            (i % 256) << 56 | (i / 256) << 48 | 0x1234
        });
        assert_spread("byte keys", |i| fnv1a_64(format!("users/{i}").as_bytes()));
    }

    #[test]
    fn keys_differing_only_in_the_top_byte_spread() {
        // 256 distinct keys over 4 members: FNV-1a alone put all of them on one member.
        let mut counts = [0usize; 4];
        for top in 0..256u64 {
            counts[key_index(top << 56 | 42, 4)] += 1;
        }
        assert!(counts.iter().all(|&c| (40..=88).contains(&c)), "{counts:?}");
    }
}
