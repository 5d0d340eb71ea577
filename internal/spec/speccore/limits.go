package speccore

import (
	"fmt"
	"math"
	"math/big"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Artifact limits' defaults and bounds.
const (
	// DefaultMaxArtifactDownload is limits.max_artifact_download's default:
	// the most bytes an artifact download (or file:// copy) may have.
	DefaultMaxArtifactDownload int64 = 2 << 30
	// DefaultMaxArtifactUnpacked is limits.max_artifact_unpacked's default:
	// the most bytes a .tar.gz artifact may unpack to (a gzip bomb stops
	// there).
	DefaultMaxArtifactUnpacked int64 = 2 << 30
	// MaxArtifactLimit bounds both settings (1 TiB): a larger value is a
	// typo, not a plan.
	MaxArtifactLimit int64 = 1 << 40
)

// AgentLimits is the agent config's `limits { }` block: bounds on what
// one assignment may make the agent read and write.
type AgentLimits struct {
	// MaxArtifactDownload bounds an artifact's size as downloaded (bytes);
	// default 2 GiB. Written "2GiB", "500MB" or a number of bytes.
	MaxArtifactDownload int64
	// MaxArtifactUnpacked bounds the uncompressed size of a .tar.gz
	// artifact (the tar stream: file contents and headers, in bytes);
	// unpacking stops with an error when it is reached. Default 2 GiB.
	MaxArtifactUnpacked int64
}

// DefaultAgentLimits returns the limits' defaults.
func DefaultAgentLimits() AgentLimits {
	return AgentLimits{MaxArtifactDownload: DefaultMaxArtifactDownload, MaxArtifactUnpacked: DefaultMaxArtifactUnpacked}
}

func limitsFields(l *AgentLimits) BlockFunc {
	return Sub(
		Attr("max_artifact_download", byteSize(&l.MaxArtifactDownload)),
		Attr("max_artifact_unpacked", byteSize(&l.MaxArtifactUnpacked)),
	)
}

func (l AgentLimits) validate(ps *Problems) {
	for _, f := range []struct {
		Name string
		v    int64
	}{{"limits.max_artifact_download", l.MaxArtifactDownload}, {"limits.max_artifact_unpacked", l.MaxArtifactUnpacked}} {
		if f.v < 1 || f.v > MaxArtifactLimit {
			ps.Add(f.Name, "must be from 1 byte to 1TiB, got %d bytes", f.v)
		}
	}
}

// ParseByteSize reads a size such as "2GiB", "500MB", "1.5 GiB" or "1024"
// (bytes). Binary (KiB, MiB, GiB, TiB) and decimal (kB, MB, GB, TB) units
// are accepted.
func ParseByteSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// byteSize decodes a size written as a string ("2GiB") or a number of
// bytes.
func byteSize(dst *int64) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		const want = `a size such as "2GiB", "500MB" or a number of bytes`
		switch v.Type() {
		case cty.Number:
			bf := v.AsBigFloat()
			n, acc := bf.Int64()
			if !bf.IsInt() || acc != big.Exact || n < 0 {
				d.fail(expr.Range(), path, "expected %s, got %s", want, bf.Text('g', -1))
				return
			}
			*dst = n
		case cty.String:
			n, err := ParseByteSize(v.AsString())
			if err != nil {
				d.fail(expr.Range(), path, "expected %s, got %q", want, v.AsString())
				return
			}
			*dst = n
		default:
			d.typeErr(expr, path, want, v)
		}
	}
}
