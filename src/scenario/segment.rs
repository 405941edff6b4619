//! Execution segments: how N generators share one test exactly, with no traffic to agree on it.
//!
//! The semantics are k6's (design doc 020, `lib/execution_segment.go`), written anew here with
//! exact rationals (u64/u128, no floats):
//!
//! - A **sequence** `0 = p₀ < p₁ < … < pₙ = 1` cuts the interval [0, 1] into n segments; segment
//!   `i` is `pᵢ:pᵢ₊₁` and its length is `pᵢ₊₁ − pᵢ`. `--segment-count N` is the sequence of N
//!   equal segments.
//! - **Striping.** Let L be the least common multiple of the lengths' denominators; segment `i`
//!   owns `nᵢ = lengthᵢ·L` of the positions `0..L`. The positions are dealt in order: position
//!   `p` goes to the first segment, largest first (ties in sequence order), that is "due", i.e.
//!   whose count so far `c` satisfies `p·nᵢ ≥ c·L` — each segment's picks are spread evenly over
//!   `0..L`. Element `j` of any integer quantity (the j-th VU, the j-th iteration of a schedule)
//!   belongs to the owner of position `j mod L`.
//! - **Shares.** `scale(v)` is how many of the elements `0..v` a segment owns. Every element has
//!   exactly one owner, so the shares over all segments sum to exactly `v`, and a share never
//!   decreases as `v` grows. `nth(k)` is the global index of a segment's k-th element: VU
//!   numbers (`${vu}`) and arrival-rate iteration indexes are global, so they are unique
//!   across the whole test.
//!
//! Every generator computes the same striping from the same sequence, so the union of the
//! segments' elements is exactly the single-machine set, interleaved.

use std::fmt;

/// The largest L (least common multiple of the segment lengths' denominators) accepted: the
/// striping keeps one entry per position.
pub(crate) const MAX_LCD: u64 = 1_000_000;

/// A segmentation error, worded for the flag that was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SegmentError(pub String);

fn err(m: impl Into<String>) -> SegmentError {
    SegmentError(m.into())
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// An exact rational in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    num: u64,
    den: u64,
}

impl Ratio {
    /// `num/den`, reduced (`den` > 0).
    fn new(num: u128, den: u128) -> Result<Ratio, SegmentError> {
        let g = gcd(num, den).max(1);
        let (n, d) = (num / g, den / g);
        match (u64::try_from(n), u64::try_from(d)) {
            (Ok(num), Ok(den)) if den > 0 => Ok(Ratio { num, den }),
            _ => Err(err("fraction too large")),
        }
    }

    /// Parses `1/3`, `0.25`, `.5`, `0` or `1` exactly.
    pub fn parse(s: &str) -> Result<Ratio, SegmentError> {
        let s = s.trim();
        let bad = || err(format!("{s:?} is not a fraction such as 1/3 or 0.25"));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let r = if let Some((n, d)) = s.split_once('/') {
            let (n, d) = (n.trim(), d.trim());
            if !digits(n) || !digits(d) {
                return Err(bad());
            }
            let n: u128 = n.parse().map_err(|_| bad())?;
            let d: u128 = d.parse().map_err(|_| bad())?;
            if d == 0 {
                return Err(err(format!("{s:?}: division by zero")));
            }
            Ratio::new(n, d)?
        } else {
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            if (int.is_empty() && frac.is_empty())
                || !(int.is_empty() || digits(int))
                || !(frac.is_empty() || digits(frac))
                || frac.len() > 18
            {
                return Err(bad());
            }
            let den = 10u128.pow(frac.len() as u32);
            let i: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| bad())?
            };
            let f: u128 = if frac.is_empty() {
                0
            } else {
                frac.parse().map_err(|_| bad())?
            };
            Ratio::new(i.checked_mul(den).ok_or_else(bad)? + f, den)?
        };
        if r.num > r.den {
            return Err(err(format!("{s:?} is more than 1")));
        }
        Ok(r)
    }

    fn cmp_key(self, o: Ratio) -> std::cmp::Ordering {
        (u128::from(self.num) * u128::from(o.den)).cmp(&(u128::from(o.num) * u128::from(self.den)))
    }

    fn sub(self, o: Ratio) -> Ratio {
        let n = u128::from(self.num) * u128::from(o.den) - u128::from(o.num) * u128::from(self.den);
        // Both denominators ≤ u64::MAX: the product fits u128; reduced it fits u64 again for
        // the values a sequence can hold (checked by `new`).
        Ratio::new(n, u128::from(self.den) * u128::from(o.den)).unwrap_or(Ratio { num: 0, den: 1 })
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.num, self.den) {
            (0, _) => write!(f, "0"),
            (n, d) if n == d => write!(f, "1"),
            (n, d) => write!(f, "{n}/{d}"),
        }
    }
}

/// A segment sequence `0, p₁, …, 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    points: Vec<Ratio>,
}

impl Sequence {
    /// N equal segments.
    pub fn equal(n: u64) -> Result<Sequence, SegmentError> {
        if n == 0 || n > MAX_LCD {
            return Err(err(format!("the segment count must be 1 to {MAX_LCD}")));
        }
        let points = (0..=n)
            .map(|i| Ratio::new(u128::from(i), u128::from(n)))
            .collect::<Result<_, _>>()?;
        Ok(Sequence { points })
    }

    /// Parses `0,1/3,2/3,1` (it must start at 0, end at 1 and strictly increase).
    pub fn parse(s: &str) -> Result<Sequence, SegmentError> {
        let points = s
            .split(',')
            .map(Ratio::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Sequence::from_points(points)
    }

    fn from_points(points: Vec<Ratio>) -> Result<Sequence, SegmentError> {
        if points.len() < 2
            || points[0].num != 0
            || points[points.len() - 1].num != points[points.len() - 1].den
        {
            return Err(err(
                "a segment sequence starts at 0 and ends at 1, e.g. 0,1/3,2/3,1",
            ));
        }
        for w in points.windows(2) {
            if w[0].cmp_key(w[1]).is_ge() {
                return Err(err(format!(
                    "a segment sequence strictly increases ({} is followed by {})",
                    w[0], w[1]
                )));
            }
        }
        let s = Sequence { points };
        s.lcd()?;
        Ok(s)
    }

    /// The sequence `0, from, to, 1` (without duplicates) for a segment given alone.
    pub fn around(from: Ratio, to: Ratio) -> Result<Sequence, SegmentError> {
        let mut p = vec![Ratio { num: 0, den: 1 }];
        for r in [from, to] {
            if r.num != 0 && p.last().is_some_and(|l| l.cmp_key(r).is_ne()) {
                p.push(r);
            }
        }
        if p.last().is_some_and(|l| l.num != l.den) {
            p.push(Ratio { num: 1, den: 1 });
        }
        Sequence::from_points(p)
    }

    /// How many segments.
    pub fn len(&self) -> usize {
        self.points.len() - 1
    }

    /// Whether there are none (never: a sequence has at least one segment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of segment `from:to`, which must be one of the sequence's.
    pub fn position(&self, from: Ratio, to: Ratio) -> Option<usize> {
        self.points
            .windows(2)
            .position(|w| w[0].cmp_key(from).is_eq() && w[1].cmp_key(to).is_eq())
    }

    fn lengths(&self) -> Vec<Ratio> {
        self.points.windows(2).map(|w| w[1].sub(w[0])).collect()
    }

    /// L: the least common multiple of the lengths' denominators.
    fn lcd(&self) -> Result<u64, SegmentError> {
        let mut l: u128 = 1;
        for r in self.lengths() {
            let d = u128::from(r.den);
            l = l / gcd(l, d) * d;
            if l > u128::from(MAX_LCD) {
                return Err(err(format!(
                    "this segment sequence needs a stripe of more than {MAX_LCD} positions; use simpler fractions"
                )));
            }
        }
        Ok(l as u64)
    }

    /// Which segment owns each position `0..L` (the striping described in the module doc).
    fn owners(&self) -> Result<Vec<u32>, SegmentError> {
        let l = self.lcd()?;
        let lens = self.lengths();
        // Normalized numerators: nᵢ = lengthᵢ · L.
        let mut order: Vec<(u64, usize)> = lens
            .iter()
            .enumerate()
            .map(|(i, r)| (r.num * (l / r.den), i))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut chosen = vec![0u64; order.len()];
        let mut owners = Vec::with_capacity(l as usize);
        for p in 0..l {
            // The first due segment, largest first: p·nᵢ ≥ cᵢ·L.
            let k = order
                .iter()
                .enumerate()
                .find(|(k, (n, _))| {
                    chosen[*k] < *n
                        && u128::from(p) * u128::from(*n) >= u128::from(chosen[*k]) * u128::from(l)
                })
                .map(|(k, _)| k)
                // Unreachable: Σnᵢ = L and each segment is due by its even spacing; the
                // fallback keeps the partition total regardless.
                .or_else(|| (0..order.len()).find(|k| chosen[*k] < order[*k].0))
                .unwrap_or(0);
            chosen[k] += 1;
            owners.push(order[k].1 as u32);
        }
        Ok(owners)
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.points.iter().map(Ratio::to_string).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// One segment's stripe: the positions it owns in every block of L elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripe {
    /// The segment's index in its sequence.
    pub index: usize,
    /// Segments in the sequence.
    pub count: usize,
    /// The segment as `from:to`.
    pub label: String,
    lcd: u64,
    positions: Vec<u64>,
}

impl Default for Stripe {
    fn default() -> Self {
        Stripe::whole()
    }
}

impl Stripe {
    /// The whole test (no segmentation): every element.
    pub fn whole() -> Stripe {
        Stripe {
            index: 0,
            count: 1,
            label: "0:1".into(),
            lcd: 1,
            positions: vec![0],
        }
    }

    /// Segment `index` of `seq`.
    pub fn new(seq: &Sequence, index: usize) -> Result<Stripe, SegmentError> {
        if index >= seq.len() {
            return Err(err(format!(
                "segment index {index} is out of range: {} segments are 0 to {}",
                seq.len(),
                seq.len() - 1
            )));
        }
        let owners = seq.owners()?;
        let positions = owners
            .iter()
            .enumerate()
            .filter(|(_, o)| **o as usize == index)
            .map(|(p, _)| p as u64)
            .collect();
        Ok(Stripe {
            index,
            count: seq.len(),
            label: format!("{}:{}", seq.points[index], seq.points[index + 1]),
            lcd: owners.len() as u64,
            positions,
        })
    }

    /// This segment's share of the test (`to − from`), e.g. 1/3: its share of an arrival rate.
    pub fn fraction(&self) -> f64 {
        self.positions.len() as f64 / self.lcd as f64
    }

    /// Whether this is the whole test.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// This segment's share of `v`: how many of the elements `0..v` it owns.
    pub fn scale(&self, v: u64) -> u64 {
        let n = self.positions.len() as u64;
        (v / self.lcd) * n + self.positions.partition_point(|p| *p < v % self.lcd) as u64
    }

    /// The global index of this segment's `k`-th element (`k` from 0).
    pub fn nth(&self, k: u64) -> u64 {
        let n = self.positions.len() as u64;
        if n == 0 {
            return u64::MAX;
        }
        (k / n)
            .saturating_mul(self.lcd)
            .saturating_add(self.positions[(k % n) as usize])
    }

    /// Whether this segment owns element `j`.
    pub fn owns(&self, j: u64) -> bool {
        self.positions.binary_search(&(j % self.lcd)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> Sequence {
        Sequence::parse(s).unwrap()
    }

    fn stripes(s: &Sequence) -> Vec<Stripe> {
        (0..s.len()).map(|i| Stripe::new(s, i).unwrap()).collect()
    }

    /// Sequences of 1 to 16 segments, equal and unequal.
    fn sequences() -> Vec<Sequence> {
        let mut out = Vec::new();
        for n in 1..=16 {
            out.push(Sequence::equal(n).unwrap());
        }
        // Unequal: lengths proportional to 1, 2, 3, … (a triangular denominator), and a
        // few hand-picked ones.
        for n in 2..=16u64 {
            let total = n * (n + 1) / 2;
            let mut acc = 0;
            let mut pts = vec!["0".to_string()];
            for k in 1..=n {
                acc += k;
                pts.push(if acc == total {
                    "1".into()
                } else {
                    format!("{acc}/{total}")
                });
            }
            out.push(seq(&pts.join(",")));
        }
        for s in [
            "0,0.1,0.25,0.5,1",
            "0,1/3,0.5,2/3,1",
            "0,1/7,3/11,0.5,0.9,1",
            "0,0.999,1",
        ] {
            out.push(seq(s));
        }
        out
    }

    #[test]
    fn parses_exact_fractions() {
        assert_eq!(Ratio::parse("1/3").unwrap(), Ratio { num: 1, den: 3 });
        assert_eq!(Ratio::parse("0.25").unwrap(), Ratio { num: 1, den: 4 });
        assert_eq!(Ratio::parse(".5").unwrap(), Ratio { num: 1, den: 2 });
        assert_eq!(Ratio::parse("2/6").unwrap(), Ratio { num: 1, den: 3 });
        assert_eq!(Ratio::parse("1").unwrap(), Ratio { num: 1, den: 1 });
        for bad in ["", "x", "1/0", "3/2", "1.5", "-1", "1//2", "0.1.2"] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(seq("0,1/3,2/3,1").to_string(), "0,1/3,2/3,1");
        assert!(Sequence::parse("0,0.5").is_err());
        assert!(Sequence::parse("0.1,1").is_err());
        assert!(Sequence::parse("0,0.5,0.5,1").is_err());
        assert!(
            Sequence::parse("0,1/999983,1/999979,1").is_err(),
            "L too large"
        );
        assert_eq!(
            Sequence::around(Ratio::parse("1/3").unwrap(), Ratio::parse("1").unwrap()).unwrap(),
            seq("0,1/3,1")
        );
    }

    #[test]
    fn equal_segments_stripe_round_robin() {
        let s = stripes(&Sequence::equal(3).unwrap());
        for j in 0..30 {
            assert!(s[(j % 3) as usize].owns(j));
        }
        assert_eq!(s[1].nth(0), 1);
        assert_eq!(s[1].nth(4), 13);
        assert_eq!([s[0].scale(10), s[1].scale(10), s[2].scale(10)], [4, 3, 3]);
        assert_eq!(s[2].label, "2/3:1");
        assert!(Stripe::new(&Sequence::equal(3).unwrap(), 3).is_err());
    }

    #[test]
    fn unequal_striping_deals_the_biggest_first() {
        // 0,1/3,1/2,1: lengths 1/3, 1/6, 1/2 → L = 6, counts 2, 1, 3; the biggest segment (2)
        // takes every other position, segment 0 the gaps while due, segment 1 the last.
        let s = stripes(&seq("0,1/3,1/2,1"));
        let owner = |j: u64| s.iter().position(|x| x.owns(j)).unwrap();
        let got: Vec<usize> = (0..6).map(owner).collect();
        assert_eq!(got, [2, 0, 2, 0, 2, 1]);
    }

    #[test]
    fn shares_sum_exactly_and_never_decrease() {
        for sq in sequences() {
            let st = stripes(&sq);
            let mut prev = vec![0u64; st.len()];
            for v in 0..10_000u64 {
                let shares: Vec<u64> = st.iter().map(|s| s.scale(v)).collect();
                assert_eq!(shares.iter().sum::<u64>(), v, "{sq} v={v}");
                for (i, (a, b)) in prev.iter().zip(&shares).enumerate() {
                    assert!(b >= a && b - a <= 1, "{sq} segment {i} v={v}");
                }
                prev = shares;
            }
            // Each element has exactly one owner, and nth enumerates a segment's elements.
            for j in 0..500 {
                assert_eq!(st.iter().filter(|s| s.owns(j)).count(), 1, "{sq} j={j}");
            }
            for s in &st {
                let mine: Vec<u64> = (0..500).filter(|j| s.owns(*j)).collect();
                let by_nth: Vec<u64> = (0..mine.len() as u64).map(|k| s.nth(k)).collect();
                assert_eq!(mine, by_nth, "{sq} segment {}", s.index);
                assert_eq!(s.scale(500), mine.len() as u64);
            }
        }
    }

    #[test]
    fn a_segment_gets_its_proportion() {
        let st = stripes(&seq("0,0.1,0.25,0.5,1"));
        let shares: Vec<u64> = st.iter().map(|s| s.scale(1000)).collect();
        assert_eq!(shares, [100, 150, 250, 500]);
        assert_eq!(Stripe::whole().scale(77), 77);
        assert_eq!(Stripe::whole().nth(77), 77);
    }
}
