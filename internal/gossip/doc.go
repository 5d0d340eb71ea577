// Package gossip wraps hashicorp/memberlist for rollwave: coordinators and
// agents share one gossip pool to discover each other, to learn who leads the
// raft cluster, and to notice hosts that fail or leave.
//
// The package has three parts:
//
//   - a node metadata codec (Meta, EncodeMeta, DecodeMeta) that fits
//     memberlist's 512-byte meta limit and tolerates fields added later;
//   - a Pool that owns one memberlist instance, keeps a membership view fed
//     by memberlist's event delegate (including members that failed or left,
//     until they are reaped), and re-advertises local metadata on SetMeta;
//   - non-blocking event subscriptions (Subscribe) for callers that react to
//     joins, leaves and metadata updates.
//
// Nothing in this package blocks inside a memberlist delegate: memberlist
// invokes its event delegate with its node lock held, so the delegate only
// copies, decodes and hands events to buffered channels without waiting.
package gossip
