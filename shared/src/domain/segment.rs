//! Segments: how a bill-run stage scales out. Every bill of a run sits in one of [`SEGMENTS`]
//! groups, fixed when it joins (a stable hash of its id). When a stage that walks bills starts, the
//! run gets one [`Segment`] item per chain of steps: a `parallel` run (and every adhoc run) one per
//! group, each walked concurrently; a run with `parallel: false` a single segment that walks the
//! groups one after another. A segment's steps write the segment and its bills only; the run item
//! is written when the stage starts and once per segment that finishes, never per step.
//! Pure: the worker (`worker::bill_runs`) does the reading and writing.

use serde::{Deserialize, Serialize};
use time::Date;

use super::bill::Report;
use super::bill_run::{Progress, RunKind, SummaryStatus};
use super::dates::iso_date;
use super::key::{Id, IdType, Kind};
use super::resource::Resource;

/// Bill groups of a run, and so the segments of a parallel stage. 16 chains of steps: the
/// table's stream runs up to 10 concurrent batches per shard (`ParallelizationFactor`) and the
/// worker runs a batch's items concurrently, so 16 keep every lane busy; a stage of 1,000,000
/// bills is then 62,500 bills a chain, about 1,300 steps of a full transaction (minutes at a
/// stream hop a step). More would add reads to every GET of a running run (one item per
/// segment) and to a sequential run's walk, for no gain the stream could deliver.
pub const SEGMENTS: u8 = 16;

/// Walks a segment starts again before it completes with what it found ([`Segment::rewalk`]).
pub const MAX_REWALKS: u8 = 5;

/// The group (0 to [`SEGMENTS`] - 1) a bill of id `bill_id` sits in within its run: FNV-1a of
/// its id, stable for good.
pub fn segment_of(bill_id: u64) -> u8 {
    let hash = bill_id
        .to_le_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    (hash % u64::from(SEGMENTS)) as u8
}

/// One chain of steps of a running stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// [`Segment::id_of`] its run and index: the same item serves every stage of the run.
    pub id: u64,
    pub run_kind: RunKind,
    pub run_id: u64,
    pub index: u8,
    pub stage: SummaryStatus,
    #[serde(with = "iso_date")]
    pub invoice_date: Date,
    /// The bill groups it walks, in order; `at` indexes the one it is in, `cursor` is the id of
    /// the last bill it took there (0: none yet).
    pub groups: Vec<u8>,
    pub at: usize,
    pub cursor: u64,
    /// Bills of its groups when the stage started, and how many it has taken.
    pub total: u64,
    pub done: u64,
    /// Bills it set aside: they could not be processed ([`super::bill::SetAside`]).
    pub failed: u64,
    pub report: Report,
    /// Its last bills are walked and the run has counted it.
    pub complete: bool,
    /// Walks started again because fewer bills were found than its groups count, and the bills
    /// the walk before found (what [`Segment::shown`] keeps showing).
    #[serde(default)]
    pub rewalks: u8,
    #[serde(default)]
    pub done_before: u64,
    /// When its current walk began (epoch ms).
    #[serde(default)]
    pub walk_started_ms: u64,
}

/// What a segment that has walked its groups does next ([`Segment::rewalk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewalk {
    /// It found every bill counted (or may walk no more): it completes.
    No,
    /// It walks again, from the start.
    Now,
    /// It found fewer, too soon after its walk began for an index to have caught up: it tries
    /// again a moment later.
    Later,
}

/// How long an index may lag its table: a walk that found fewer bills than counted is walked
/// again only once this has passed since it began (DynamoDB's global secondary indexes usually
/// catch up within a second).
pub const REWALK_PAUSE_MS: u64 = 1_000;

impl Segment {
    /// The id of segment `index` of a run: unique per run kind, run and index.
    pub fn id_of(run_kind: RunKind, run_id: u64, index: u8) -> Option<u64> {
        let kind_bit = match run_kind {
            RunKind::Regular => 0,
            RunKind::Adhoc => 32,
        };
        run_id.checked_mul(64)?.checked_add(kind_bit + u64::from(index))
    }

    /// The segments of a stage: one per bill group when `parallel`, else one walking them all.
    /// `totals[g]`: bills in group `g`. `None` for a run id past the segment ids' range.
    pub fn for_stage(
        run_kind: RunKind,
        run_id: u64,
        stage: SummaryStatus,
        invoice_date: Date,
        parallel: bool,
        (totals, now_ms): (&[u64], u64),
    ) -> Option<Vec<Self>> {
        let chains: Vec<Vec<u8>> =
            if parallel { (0..SEGMENTS).map(|g| vec![g]).collect() } else { vec![(0..SEGMENTS).collect()] };
        chains
            .into_iter()
            .enumerate()
            .map(|(index, groups)| {
                let index = index as u8;
                Some(Self {
                    id: Self::id_of(run_kind, run_id, index)?,
                    run_kind,
                    run_id,
                    index,
                    stage,
                    invoice_date,
                    total: groups.iter().map(|&g| totals.get(usize::from(g)).copied().unwrap_or(0)).sum(),
                    groups,
                    at: 0,
                    cursor: 0,
                    done: 0,
                    failed: 0,
                    report: Report::default(),
                    complete: false,
                    rewalks: 0,
                    done_before: 0,
                    walk_started_ms: now_ms,
                })
            })
            .collect()
    }

    /// The bill group it walks now, `None` once it has walked them all.
    pub fn group(&self) -> Option<String> {
        self.groups.get(self.at).map(|&g| self.run_kind.bill_group(self.run_id, g))
    }

    /// Moves to the next group once the current one is walked.
    pub fn next_group(&mut self) {
        self.at += 1;
        self.cursor = 0;
    }

    pub fn walked(&self) -> bool {
        self.at >= self.groups.len()
    }

    /// The bills it shows as done: a walk started again does not take back what the one before
    /// showed.
    pub fn shown(&self) -> u64 {
        self.done.max(self.done_before)
    }

    /// A walk that found fewer bills than its groups counted when the stage began: an index that
    /// lagged its table hid some (DynamoDB's indexes are eventually consistent). The segment then
    /// walks again from the start, at most [`MAX_REWALKS`] times and once [`REWALK_PAUSE_MS`] have
    /// passed since its walk began (a stage's changes are idempotent, so a bill already processed
    /// is only read again).
    pub fn rewalk(&mut self, now_ms: u64) -> Rewalk {
        if self.done >= self.total || self.rewalks >= MAX_REWALKS {
            return Rewalk::No;
        }
        if now_ms.saturating_sub(self.walk_started_ms) < REWALK_PAUSE_MS {
            return Rewalk::Later;
        }
        *self = Self {
            at: 0,
            cursor: 0,
            done: 0,
            failed: 0,
            report: Report::default(),
            rewalks: self.rewalks + 1,
            done_before: self.done,
            walk_started_ms: now_ms,
            groups: std::mem::take(&mut self.groups),
            ..self.clone()
        };
        Rewalk::Now
    }
}

impl Resource for Segment {
    const KIND: Kind = Kind::new("SEGMENT", IdType::Counter);

    fn id(&self) -> Id {
        Id::Int(self.id)
    }

    fn work_pending(&self) -> bool {
        !self.complete
    }
}

/// What a run records of its running stage, kept beside it (never shown to clients): the
/// segments started, which of them have finished (a bit each), and their sums so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageState {
    pub stage: String,
    pub segments: u8,
    pub total: u64,
    pub finished: u32,
    pub done: u64,
    pub failed: u64,
    pub report: Report,
}

impl StageState {
    /// Whether this is the state of `progress`'s stage with its segments under way (below 100 %).
    fn runs(&self, progress: &Progress) -> bool {
        self.stage == progress.summary_status.name() && progress.summary_status_percentage < 100
    }

    /// `state` when it is that of `progress`'s stage with its segments under way.
    pub fn running(state: Option<Self>, progress: &Progress) -> Option<Self> {
        state.filter(|s| s.runs(progress))
    }

    /// Whether a run at `progress`, with `state` beside it, has work pending itself: not while its
    /// segments run (they carry the work, each with its own lease), so that the sweeper never finds
    /// a long stage's run past its lease.
    pub fn run_pending(progress: &Progress, state: Option<&Self>) -> bool {
        progress.work_pending() && !state.is_some_and(|s| s.runs(progress))
    }

    pub fn start(stage: SummaryStatus, segments: &[Segment]) -> Self {
        Self {
            stage: stage.name().to_owned(),
            segments: segments.len() as u8,
            total: segments.iter().map(|s| s.total).sum(),
            ..Self::default()
        }
    }

    /// Counts a finished segment once (a repeated report changes nothing): `false` when it was
    /// already counted.
    pub fn finish(&mut self, segment: &Segment) -> bool {
        let bit = 1u32 << segment.index;
        if self.finished & bit != 0 {
            return false;
        }
        self.finished |= bit;
        self.done += segment.done;
        self.failed += segment.failed;
        self.report.merge(&segment.report);
        true
    }

    pub fn all_finished(&self) -> bool {
        self.finished.count_ones() >= u32::from(self.segments)
    }

    /// The share of the stage's bills done, as a percentage below 100 until every segment is.
    pub fn percentage(total: u64, done: u64) -> u8 {
        (u128::from(done) * 100 / u128::from(total.max(1))).min(99) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bills_spread_over_every_group_about_evenly() {
        let mut counts = [0u32; SEGMENTS as usize];
        for id in 1..=16_000 {
            counts[usize::from(segment_of(id))] += 1;
        }
        assert!(counts.iter().all(|&c| (800..=1200).contains(&c)), "{counts:?}");
        assert_eq!(segment_of(42), segment_of(42), "stable");
    }

    fn stage(parallel: bool) -> Vec<Segment> {
        let totals: Vec<u64> = (1..=u64::from(SEGMENTS)).collect();
        let date = Date::from_calendar_date(2026, time::Month::January, 31).unwrap();
        Segment::for_stage(RunKind::Regular, 7, SummaryStatus::Reporting, date, parallel, (&totals, 1_000)).unwrap()
    }

    #[test]
    fn a_parallel_stage_has_a_segment_per_group_and_a_sequential_one_a_single_segment() {
        let parallel = stage(true);
        assert_eq!(parallel.len(), usize::from(SEGMENTS));
        assert!(parallel.iter().enumerate().all(|(i, s)| s.groups == vec![i as u8] && s.total == i as u64 + 1));
        let sequential = stage(false);
        assert_eq!(sequential.len(), 1);
        assert_eq!(sequential[0].groups.len(), usize::from(SEGMENTS));
        assert_eq!(sequential[0].total, (1..=16).sum::<u64>());
    }

    #[test]
    fn segment_ids_are_distinct_per_kind_run_and_index_and_refuse_overflow() {
        let mut ids = std::collections::BTreeSet::new();
        for kind in [RunKind::Regular, RunKind::Adhoc] {
            for run in 1..5 {
                for index in 0..SEGMENTS {
                    assert!(ids.insert(Segment::id_of(kind, run, index).unwrap()));
                }
            }
        }
        assert_eq!(Segment::id_of(RunKind::Regular, u64::MAX / 2, 0), None);
    }

    #[test]
    fn a_stage_counts_each_segment_once_and_completes_when_the_last_finishes() {
        let segments = stage(true);
        let mut state = StageState::start(SummaryStatus::Reporting, &segments);
        for (i, mut segment) in segments.into_iter().enumerate() {
            segment.done = segment.total;
            assert!(!state.all_finished());
            assert!(state.finish(&segment));
            assert!(!state.finish(&segment), "a repeated report of segment {i} counts nothing");
        }
        assert!(state.all_finished());
        assert_eq!(state.done, state.total);
    }

    #[test]
    fn a_walk_that_found_fewer_bills_than_counted_starts_again_later_a_bounded_number_of_times() {
        let mut segment = stage(false).remove(0);
        let mut now = 1_000;
        segment.at = segment.groups.len();
        segment.done = segment.total;
        assert_eq!(segment.rewalk(now + REWALK_PAUSE_MS), Rewalk::No, "all found");
        segment.report.revenue = rust_decimal::Decimal::ONE;
        for n in 1..=MAX_REWALKS {
            segment.at = segment.groups.len();
            segment.done = segment.total - 1;
            assert_eq!(segment.rewalk(now + REWALK_PAUSE_MS - 1), Rewalk::Later, "too soon for an index to catch up");
            now += REWALK_PAUSE_MS;
            assert_eq!(segment.rewalk(now), Rewalk::Now);
            assert_eq!((segment.at, segment.cursor, segment.done, segment.rewalks), (0, 0, 0, n));
            assert_eq!((segment.shown(), segment.walk_started_ms), (segment.total - 1, now), "shown never goes back");
            assert_eq!(segment.report, Report::default(), "counted afresh");
            assert_eq!(segment.groups.len(), usize::from(SEGMENTS));
        }
        segment.done = segment.total - 1;
        assert_eq!(segment.rewalk(now * 2), Rewalk::No, "bounded");
    }

    #[test]
    fn the_percentage_stays_below_100_until_the_stage_completes() {
        assert_eq!(StageState::percentage(0, 0), 0);
        assert_eq!(StageState::percentage(200, 199), 99);
        assert_eq!(StageState::percentage(200, 200), 99);
        assert_eq!(StageState::percentage(200, 50), 25);
        assert_eq!(StageState::percentage(u64::MAX, u64::MAX), 99);
    }

    mod properties {
        use super::*;
        use crate::domain::bill::{Account, Bill, NewBill};
        use proptest::prelude::*;
        use rust_decimal::Decimal;

        fn bill(id: u64, cents: i64, account: u64) -> Bill {
            let body = serde_json::json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z",
                "percentage": 10, "baseAmount": 10});
            let mut bill = NewBill::parse(&body)
                .unwrap()
                .into_bill(id, id, &mut (1u64..), time::OffsetDateTime::UNIX_EPOCH)
                .unwrap();
            bill.amount = Decimal::new(cents, 2);
            bill.account = Some(Account { id: account, name: "A".into(), account_type: None });
            bill
        }

        proptest! {
            /// However a run's bills fall into segments and in whatever order the segments finish
            /// (each possibly reported twice), the stage completes once, when the last distinct
            /// segment finishes, with the figures of one walk over the bills in id order.
            #[test]
            fn segments_finished_in_any_order_add_up_to_one_walk(
                // Few distinct amounts, so that equal largest bills are common.
                amounts in proptest::collection::vec((-3i64..4, 1u64..5), 0..120),
                order in proptest::collection::vec(0u8..SEGMENTS, 0..64),
            ) {
                let bills: Vec<Bill> =
                    amounts.iter().enumerate().map(|(i, (units, account))| bill(i as u64 + 1, units * 100, *account)).collect();
                let mut walk = Report::default();
                bills.iter().for_each(|b| walk.add(b));
                let date = Date::from_calendar_date(2024, time::Month::March, 31).unwrap();
                let mut totals = vec![0u64; usize::from(SEGMENTS)];
                bills.iter().for_each(|b| totals[usize::from(segment_of(b.id))] += 1);
                let mut segments =
                    Segment::for_stage(RunKind::Regular, 3, SummaryStatus::Reporting, date, true, (&totals, 0)).unwrap();
                for b in &bills {
                    let segment = &mut segments[usize::from(segment_of(b.id))];
                    segment.report.add(b);
                    segment.done += 1;
                }
                let mut state = StageState::start(SummaryStatus::Reporting, &segments);
                let mut completions = 0;
                let finishing = order.iter().copied().chain(0..SEGMENTS);
                for index in finishing {
                    let was = state.all_finished();
                    state.finish(&segments[usize::from(index)]);
                    completions += usize::from(!was && state.all_finished());
                    prop_assert!(StageState::percentage(state.total, state.done) <= 99);
                }
                prop_assert_eq!(completions, 1);
                prop_assert_eq!(state.done, bills.len() as u64);
                prop_assert_eq!(state.total, bills.len() as u64);
                prop_assert_eq!(&state.report, &walk);
                // The largest bill, the first of equals in id order (what one walk would name).
                let largest = bills.iter().max_by(|a, b| a.amount.cmp(&b.amount).then(b.id.cmp(&a.id)));
                prop_assert_eq!(state.report.max_invoice_bill_id, largest.map(|b| b.id));
                prop_assert_eq!(state.report.revenue, bills.iter().map(|b| b.amount).sum::<Decimal>());
            }
        }
    }
}
