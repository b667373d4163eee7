//! [`BoundaryStats`]: how far chunk boundaries landed from the grid, in
//! constant memory (a run may last for hours at 30 chunks a second).

/// Bucket width, microseconds.
const BUCKET_US: i64 = 1;
/// Errors from 0 to this many microseconds get their own bucket; later ones
/// share the last.
const RANGE_US: i64 = 20_000;

/// A histogram of boundary errors with 1 µs resolution up to 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryStats {
    buckets: Vec<u32>,
    count: u64,
    early: u64,
    max_us: i64,
}

impl Default for BoundaryStats {
    fn default() -> Self {
        BoundaryStats {
            buckets: vec![0; usize::try_from(RANGE_US / BUCKET_US).unwrap_or(0) + 1],
            count: 0,
            early: 0,
            max_us: 0,
        }
    }
}

impl BoundaryStats {
    /// Adds one chunk's error (positive: late). An early chunk counts as 0
    /// and is counted apart ([`BoundaryStats::early`]).
    pub fn add(&mut self, error_us: i64) {
        if error_us < 0 {
            self.early += 1;
        }
        let error = error_us.max(0);
        self.max_us = self.max_us.max(error);
        let last = self.buckets.len() - 1;
        let i = usize::try_from(error / BUCKET_US).map_or(last, |i| i.min(last));
        if let Some(bucket) = self.buckets.get_mut(i) {
            *bucket = bucket.saturating_add(1);
        }
        self.count += 1;
    }

    /// Chunks counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Chunks that started before their boundary (never expected).
    #[must_use]
    pub fn early(&self) -> u64 {
        self.early
    }

    /// The largest error, µs.
    #[must_use]
    pub fn max_us(&self) -> i64 {
        self.max_us
    }

    /// The `q` quantile (0..=1) of the errors, µs; 0 when empty. Errors
    /// beyond the 20 ms range report the maximum.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> i64 {
        if self.count == 0 {
            return 0;
        }
        // The rank of the quantile, 1-based, nearest-rank definition.
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let last = self.buckets.len() - 1;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return if i == last {
                    self.max_us
                } else {
                    i as i64 * BUCKET_US
                };
            }
        }
        self.max_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut s = BoundaryStats::default();
        assert_eq!(s.quantile_us(0.5), 0);
        for e in 1..=100 {
            s.add(e);
        }
        s.add(-3);
        s.add(50_000);
        assert_eq!(s.count(), 102);
        assert_eq!(s.early(), 1);
        assert_eq!(s.quantile_us(0.5), 50);
        assert_eq!(s.quantile_us(0.98), 99);
        assert_eq!(s.quantile_us(1.0), 50_000);
        assert_eq!(s.max_us(), 50_000);
    }
}
