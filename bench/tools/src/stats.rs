//! Latency percentiles over recorded samples (microseconds).

/// Summary of a set of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Sorts `samples` in place and returns the nearest-rank percentiles (zeros when empty).
pub fn percentiles(samples: &mut [u64]) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| -> u64 {
        if samples.is_empty() {
            return 0;
        }
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let rank = (q * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    Percentiles {
        count: samples.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: samples.last().copied().unwrap_or(0),
    }
}

impl Percentiles {
    /// The JSON members `"p50_us":…,"p90_us":…` (no braces), for the client's reports.
    pub fn json_members(&self) -> String {
        format!(
            "\"samples\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}",
            self.count, self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.p999, p.max), (50, 90, 99, 100, 100));
        assert_eq!(p.count, 100);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(percentiles(&mut []).max, 0);
        let p = percentiles(&mut [7]);
        assert_eq!((p.p50, p.p99, p.max), (7, 7, 7));
    }
}
