package speccore

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Lifecycle hooks: commands the agent runs at fixed points of a swap and
// a revert (docs/release-spec.md, "Lifecycle hooks").
const (
	// HookPreSwitch runs once the new slot is started and ready, before
	// traffic moves; a failure aborts the swap (the old slot keeps serving).
	HookPreSwitch = "pre_switch"
	// HookPostSwitch runs right after traffic moved to the new slot; a
	// failure reverts the host (a smoke test).
	HookPostSwitch = "post_switch"
	// HookPreRevert runs before a revert moves traffic back; a failure is
	// reported, never blocks the revert.
	HookPreRevert = "pre_revert"
	// HookPostRevert runs once a revert moved traffic back, before the new
	// slot stops; a failure is reported, never blocks the revert.
	HookPostRevert = "post_revert"
	// HookDrain runs before the old slot is stopped (finalize, or at once
	// with keep_old = "cold"); a failure is reported and the stop goes on.
	HookDrain = "drain"
)

// HookNames lists the lifecycle hooks in the order they can run.
var HookNames = []string{HookPreSwitch, HookPostSwitch, HookDrain, HookPreRevert, HookPostRevert}

const (
	// DefaultHookTimeout bounds one hook run when the spec sets no timeout.
	DefaultHookTimeout = 30 * time.Second
	// MaxHookTimeout caps hook.timeout: a hook holds the app's swap or
	// revert while it runs, and a revert must not wait for long.
	MaxHookTimeout = 10 * time.Minute
)

// Hook is one lifecycle hook block.
type Hook struct {
	// Name is the block's label: one of HookNames.
	Name string
	// Exec is the executable (absolute after expansion) and its
	// arguments, run without a shell; placeholders expand.
	Exec []string
	// Timeout kills a run that takes longer; it then counts as failed.
	Timeout time.Duration
}

// HookBlock decodes one hook "NAME" block, appending it to dst.
func HookBlock(dst *[]Hook) BlockFunc {
	return func(d *Decoder, b *hcl.Block, path string) {
		h := Hook{Name: b.Labels[0], Timeout: DefaultHookTimeout}
		d.Pos[path+".name"] = b.LabelRanges[0]
		d.Body(b.Body, path, b.DefRange, []Field{
			Attr("exec", StrList(&h.Exec)),
			Attr("timeout", Duration(&h.Timeout)),
		})
		*dst = append(*dst, h)
	}
}

func ValidateHooks(ps *Problems, hooks []Hook) {
	const p = "release.hook"
	seen := map[string]int{}
	for i, h := range hooks {
		hp := Index(p, i)
		if err := CheckHookName(h.Name); err != nil {
			ps.Add(hp+".name", "%v", err)
		} else if first, dup := seen[h.Name]; dup {
			ps.Add(hp+".name", "duplicate hook %q (also hook %d); each hook may be defined once", h.Name, first)
		} else {
			seen[h.Name] = i
		}
		if len(h.Exec) == 0 {
			ps.Add(hp+".exec", `is required: the executable and its arguments, such as ["/usr/local/bin/smoke-test", "{{port}}"]`)
		} else if err := CheckHookCommand(h.Exec); err != nil {
			ps.Add(hp+".exec", "%v", err)
		}
		Within(ps, hp+".timeout", h.Timeout, MaxHookTimeout)
	}
}

// CheckHookName returns why name is not a lifecycle hook, or nil.
func CheckHookName(name string) error {
	if !slices.Contains(HookNames, name) {
		return fmt.Errorf("unknown hook %q; a hook is one of %s", name, strings.Join(HookNames, ", "))
	}
	return nil
}

// CheckHookCommand returns why argv, a hook's exec list as written in a
// spec, cannot run, or nil. The agent applies it to every order too (its
// local policy), so a forged order is refused by the same rule: every word
// free of control characters and using only known placeholders; the
// executable, after expansion, an absolute path (the agent runs it without
// a shell or a PATH search) not starting with a systemd command prefix
// character (the rule of unit.exec_start).
func CheckHookCommand(argv []string) error {
	if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
		return fmt.Errorf("the executable (first element) must not be empty")
	}
	for i, a := range argv {
		if err := CheckUnitValue(a); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		if msg := CheckTemplate(a, Placeholders); msg != "" {
			return fmt.Errorf("[%d]: %s", i, msg)
		}
	}
	first := strings.TrimLeft(argv[0], " \t\"'\\")
	if first != "" && strings.ContainsRune(ExecPrefixChars, rune(first[0])) {
		return fmt.Errorf("executable %q starts with %q, which systemd reads as a command prefix (one of %s); hooks follow unit.exec_start's rule: start with the executable's absolute path",
			argv[0], first[:1], strings.Join(strings.Split(ExecPrefixChars, ""), " "))
	}
	if exe := Expand(argv[0], SampleVars); !strings.HasPrefix(exe, "/") {
		return fmt.Errorf("executable %q must be an absolute path or start with {{slot_dir}}: hooks run without a shell or a PATH search", argv[0])
	}
	return nil
}

// CheckHookPrefix returns why p cannot be a policy.hook_prefixes entry,
// or nil: an absolute directory ("/usr/local/lib/rollwave-hooks/"), or
// "{{slot_dir}}" optionally followed by a directory inside it (executables
// shipped in the release's artifact).
func CheckHookPrefix(p string) error {
	if err := CheckUnitValue(p); err != nil {
		return err
	}
	rest, inSlot := strings.CutPrefix(p, "{{slot_dir}}")
	switch {
	case !inSlot && !strings.HasPrefix(p, "/"):
		return fmt.Errorf("must be an absolute directory such as \"/usr/local/lib/rollwave-hooks/\" or start with {{slot_dir}}, got %q", p)
	case strings.Contains(rest, "{{") || strings.Contains(rest, "}}"):
		return fmt.Errorf("only {{slot_dir}}, at the start, may appear, got %q", p)
	case inSlot && rest != "" && !strings.HasPrefix(rest, "/"):
		return fmt.Errorf("{{slot_dir}} must be followed by \"/\" or nothing, got %q", p)
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("must not contain . or .. segments, got %q", p)
		}
	}
	return nil
}

// HookPrefixAllows reports whether exe, a hook's executable as written
// in the spec (placeholders unexpanded), lies inside the directory
// prefix (a valid CheckHookPrefix entry). Dot segments in exe are
// resolved first, so "{{slot_dir}}/../x" is not inside "{{slot_dir}}".
func HookPrefixAllows(prefix, exe string) bool {
	dir := strings.TrimSuffix(path.Clean(prefix), "/")
	return strings.HasPrefix(path.Clean(exe), dir+"/")
}
