// Package plan turns a release spec and a view of the fleet into a rollout
// plan: an ordered list of phases, each a set of hosts with a bake time.
//
// The planner is pure and deterministic: no clock, no randomness, no I/O.
// The same spec and fleet — with Fleet.Hosts and Fleet.Cells in any order —
// always give the same plan, so a plan can be recomputed and compared, and a
// new leader computes what the old one did.
//
// # Targeting
//
// A host is targeted when its cell matches any target.cells glob (path.Match
// semantics; an empty list matches every cell), matches no target.exclude
// glob, and carries every target.labels key with the same value. No targeted
// host is an error wrapping ErrNoHosts. A malformed glob is an error naming
// the field and the glob.
//
// # Cell order
//
// Cells that have targeted hosts are ordered least risky first:
//
//  1. cells with a Cell record before cells without one (an unknown cell is
//     treated as risky, not as risk 0);
//  2. risk ascending;
//  3. criticality low < medium < high < critical; any other value (including
//     empty) sorts after critical, for the same reason;
//  4. fewer users;
//  5. fewer targeted hosts;
//  6. name.
//
// Cells without a record are ordered by name only. Within a cell, hosts are
// assigned in ID order.
//
// # Phase sizes
//
// Every phase n has a target size:
//
//	geometric: ceil(canary × factor^n)   (factor > 1, e.g. 2 or 1.5)
//	linear:    canary + n × step         (step ≥ 1)
//
// capped by max_size (a count, or a percentage of the targeted hosts rounded
// up, at least 1). Phase 0 is the canary, so its target is canary capped by
// max_size. Target sizes never decrease from one phase to the next.
//
// A phase then takes as many hosts as it can, up to its target, under two
// constraints:
//
//   - per_cell_max (0 = unlimited): at most that many hosts from any one cell
//     in one phase. It applies to the canary too.
//   - parallel_cells_after = K. A phase with index < K, or any phase when K is
//     0, is a single-cell phase: it draws only from the first cell in order
//     that still has unassigned hosts, and if that cell (or per_cell_max)
//     cannot fill the target the phase is simply smaller — it never spills
//     into the next cell. Phases with index ≥ K (K > 0) may span cells: they
//     fill from the first unfinished cell, then the next, in cell order,
//     taking at most per_cell_max from each.
//
// Phase 0 is always single-cell, so the canary comes from the least risky
// cell and holds min(canary, max_size, per_cell_max, hosts in that cell)
// hosts. Because of the two constraints, actual phase sizes are
// non-decreasing except where a phase is the last one, or was cut short by
// the cell boundary or per_cell_max (it took everything the rules let it
// take). A cell's hosts are never started before an earlier cell's, and a
// spanning phase never skips an unfinished earlier cell.
//
// Phase.Hosts keeps the assignment order (cells in cell order, hosts by ID
// within a cell); Phase.Cells lists the cells a phase touches in cell order.
//
// # Parallel regions
//
// With parallel_regions_after = N (N > 0) the first N phases are planned as
// above over every targeted host. The hosts left are then grouped by region
// (HostInfo.Region; NoRegion when empty), and each region, in name order,
// gets its own phases over its own hosts, with the same rules and cell
// order, numbered on from ordinal N: a region's first own phase has phase
// N's target size, single-cell rule and bake. A region's phases are
// contiguous in Plan.Phases and carry Phase.Region; Phase.Index stays the
// position in Plan.Phases. approval.after_phases applies to the shared
// phases only (an approval would stop every region). When the shared
// phases take every host, nothing is split.
//
// # Bake
//
// bake_n = max(min, round(first × decay^n)) milliseconds, with decay in
// (0, 1], and never more than the previous phase's bake.
//
// # Defaults for unset (zero) fields
//
// canary 0 means 1; growth "" means geometric; factor 0 means 2; decay 0
// means 1 (no decay); max_size 0 and per_cell_max 0 mean unlimited. step has
// no default: linear growth needs step ≥ 1. Any other out-of-range value is
// an error naming the field, e.g.
// "phases.factor must be greater than 1 for geometric growth, got 1".
//
// # Errors
//
// Compute returns errors wrapping ErrInvalidSpec (every bad field, each
// named), ErrInvalidFleet (empty or repeated host IDs, two records for one
// cell — either would break "every host in exactly one phase" or
// determinism) or ErrNoHosts. It does not modify its inputs, and the plan
// shares no slices with them.
//
// # Approval
//
// A phase whose index is listed in approval.after_phases has
// approval_required set: the rollout waits for an operator after it. Indexes
// beyond the last phase are ignored, since the number of phases depends on
// the fleet at planning time.
package plan
