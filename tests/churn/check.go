package churn

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Report is the checker's verdict on a run's records.
type Report struct {
	// Answers counts every is-leader answer, True the true ones.
	Answers, True int
	// Checked counts the true answers checked against the controller's
	// lease history (their term was seen there); Unverified those whose
	// term the history never saw, which only the history-free rules judged.
	Checked, Unverified int
	// Violations counts the violations found; Errs describes the first
	// maxReported of them.
	Violations int
	Errs       []error
}

// maxReported bounds the violations a Report describes.
const maxReported = 40

// Err is nil if no violation was found, else one error listing them.
func (r Report) Err() error {
	if r.Violations == 0 {
		return nil
	}
	errs := append([]error{fmt.Errorf("%d violations of the leadership contract (the first %d follow)", r.Violations, len(r.Errs))}, r.Errs...)
	return errors.Join(errs...)
}

func (r *Report) flag(format string, args ...any) {
	r.Violations++
	if len(r.Errs) < maxReported {
		r.Errs = append(r.Errs, fmt.Errorf(format, args...))
	}
}

// Check proves the leadership contract of DESIGN.md §4.4 over a run's
// records: every is-leader answer (each decided somewhere within
// [Before, NS]), every hook run, and the controller's lease history (nil:
// the rules that need it are skipped and every true answer is
// Unverified). G is the guarantee. A violation is flagged only when the
// records prove it whatever the answers' exact instants were:
//
//  1. two true answers by different units less than G apart, unless the
//     earlier one's leader-deposed ended in between (equal times
//     included: two units true at the same instant);
//  2. a true answer by a unit between the start of its leader-deposed and
//     the start of its next leader-elected;
//  3. a true answer for a term that the controller gave to another unit,
//     or that another unit also answered true for;
//  4. a true answer after the recorder had seen the lease move past its
//     term (vacant, or a later term);
//  5. a lease ending less than G after a true answer for its term, unless
//     the holder's leader-deposed ended in between (a step-down's release);
//  6. a true answer, or a leader-elected, for a term at or below one the
//     unit gave up in an earlier leader-deposed: a regained lease is a
//     new term.
func Check(answers []Answer, runs []Run, hist History, g time.Duration) Report {
	var r Report
	r.Answers = len(answers)
	var trues []Answer
	for _, a := range answers {
		if a.Leader {
			trues = append(trues, a)
		}
	}
	r.True = len(trues)
	slices.SortStableFunc(trues, func(a, b Answer) int { return cmp.Compare(a.Before, b.Before) })
	idx := indexRuns(runs)
	checkPairs(&r, trues, idx, g)
	checkDeposed(&r, trues, runs, idx)
	checkTerms(&r, trues, hist, idx, g)
	checkGivenUp(&r, answers, trues, runs)
	return r
}

// checkPairs is rule 1. trues is sorted by Before. Answers a and b are
// proved less than G apart when b.NS - a.Before < G (and a.NS - b.Before
// < G), the widest their decision instants can be; the handover excuses
// them if either unit's leader-deposed ended within the widest window in
// which it could have come first.
func checkPairs(r *Report, trues []Answer, idx runIndex, g time.Duration) {
	gn := g.Nanoseconds()
	for i, a := range trues {
		for _, b := range trues[i+1:] {
			if b.Before >= a.NS+gn {
				break
			}
			if b.Unit == a.Unit || b.NS-a.Before >= gn || a.NS-b.Before >= gn {
				continue
			}
			if idx.endedWithin(a.Unit, "leader-deposed", a.Before, b.NS) || idx.endedWithin(b.Unit, "leader-deposed", b.Before, a.NS) {
				continue
			}
			r.flag("%s answered true at %d and %s at %d, %v apart, with no leader-deposed of the first ended between",
				a.Unit, a.NS, b.Unit, b.NS, time.Duration(b.NS-a.NS))
		}
	}
}

// checkDeposed is rule 2.
func checkDeposed(r *Report, trues []Answer, runs []Run, idx runIndex) {
	byUnit := map[string][]Answer{}
	for _, a := range trues {
		byUnit[a.Unit] = append(byUnit[a.Unit], a)
	}
	for _, d := range runs {
		if d.Hook != "leader-deposed" {
			continue
		}
		next := idx.nextStart(d.Unit, "leader-elected", d.Start)
		for _, a := range byUnit[d.Unit] {
			if a.Before >= d.Start && a.NS < next {
				r.flag("%s answered true at %d (in %s), after its leader-deposed began at %d", a.Unit, a.NS, a.Hook, d.Start)
			}
		}
	}
}

// checkTerms is rules 3, 4 and 5.
func checkTerms(r *Report, trues []Answer, hist History, idx runIndex, g time.Duration) {
	spans := hist.terms()
	owner := map[uint64]string{}
	twice := map[string]bool{}
	for _, a := range trues {
		if u, ok := owner[a.Term]; !ok {
			owner[a.Term] = a.Unit
		} else if u != a.Unit && !twice[fmt.Sprint(a.Term, a.Unit)] {
			twice[fmt.Sprint(a.Term, a.Unit)] = true
			r.flag("%s answered true for term %d at %d, and %s did too: two units true in one term", a.Unit, a.Term, a.NS, u)
		}
		s, ok := spans[a.Term]
		if !ok {
			r.Unverified++
			continue
		}
		r.Checked++
		switch {
		case s.Holder != a.Unit:
			r.flag("%s answered true for term %d at %d, but the controller gave term %d to %s", a.Unit, a.Term, a.NS, a.Term, s.Holder)
		case s.End == 0:
		case s.End <= a.Before:
			r.flag("%s answered true for term %d at %d (in %s), %v after the controller's lease had moved on (%s, seen at %d)",
				a.Unit, a.Term, a.NS, a.Hook, time.Duration(a.Before-s.End), s.EndedBy, s.End)
		case s.End < a.Before+g.Nanoseconds() && !idx.endedWithin(a.Unit, "leader-deposed", a.Before, s.End):
			r.flag("%s answered true for term %d at %d (in %s), and the lease was already past that term %v later (%s, seen at %d), with no leader-deposed of %s ended between: a true answer must hold for G = %v",
				a.Unit, a.Term, a.NS, a.Hook, time.Duration(s.End-a.Before), s.EndedBy, s.End, a.Unit, g)
		}
	}
}

// checkGivenUp is rule 6. A run's term is the term of the answers
// recorded inside it (the hook's UNITER_LEADERSHIP_TERM; in
// leader-deposed, the term given up).
func checkGivenUp(r *Report, answers []Answer, trues []Answer, runs []Run) {
	type given struct {
		start int64
		term  uint64
	}
	up := map[string][]given{}
	for _, d := range runs {
		if d.Hook != "leader-deposed" {
			continue
		}
		if term, ok := runTerm(answers, d); ok {
			up[d.Unit] = append(up[d.Unit], given{d.Start, term})
		}
	}
	for _, a := range trues {
		for _, u := range up[a.Unit] {
			if a.Before >= u.start && a.Term <= u.term {
				r.flag("%s answered true for term %d at %d (in %s), after its leader-deposed at %d gave up term %d",
					a.Unit, a.Term, a.NS, a.Hook, u.start, u.term)
				break
			}
		}
	}
	for _, e := range runs {
		if e.Hook != "leader-elected" {
			continue
		}
		term, ok := runTerm(answers, e)
		if !ok {
			continue
		}
		for _, u := range up[e.Unit] {
			if e.Start > u.start && term <= u.term {
				r.flag("%s ran leader-elected for term %d at %d, after its leader-deposed at %d gave up term %d",
					e.Unit, term, e.Start, u.start, u.term)
				break
			}
		}
	}
}

// runTerm is the term of the answers recorded inside run.
func runTerm(answers []Answer, run Run) (uint64, bool) {
	for _, a := range answers {
		if a.Unit == run.Unit && a.Hook == run.Hook && a.Before >= run.Start && (run.End == 0 || a.NS <= run.End) {
			return a.Term, true
		}
	}
	return 0, false
}

// runIndex holds, per unit and hook, the runs' ends and starts, sorted.
type runIndex struct {
	ends, starts map[[2]string][]int64
}

func indexRuns(runs []Run) runIndex {
	idx := runIndex{ends: map[[2]string][]int64{}, starts: map[[2]string][]int64{}}
	for _, r := range runs {
		k := [2]string{r.Unit, r.Hook}
		idx.starts[k] = append(idx.starts[k], r.Start)
		if r.End != 0 {
			idx.ends[k] = append(idx.ends[k], r.End)
		}
	}
	for _, m := range []map[[2]string][]int64{idx.ends, idx.starts} {
		for _, v := range m {
			slices.Sort(v)
		}
	}
	return idx
}

// endedWithin: a run of unit's hook ended (or failed) within [from, to].
func (x runIndex) endedWithin(unit, hook string, from, to int64) bool {
	ends := x.ends[[2]string{unit, hook}]
	i, _ := slices.BinarySearch(ends, from)
	return i < len(ends) && ends[i] <= to
}

// nextStart is the start of unit's first run of hook after t (max int64
// if none).
func (x runIndex) nextStart(unit, hook string, after int64) int64 {
	starts := x.starts[[2]string{unit, hook}]
	i, found := slices.BinarySearch(starts, after)
	if found {
		i++
	}
	for i < len(starts) && starts[i] <= after {
		i++
	}
	if i < len(starts) {
		return starts[i]
	}
	return 1<<63 - 1
}
