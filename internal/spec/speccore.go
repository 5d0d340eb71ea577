package spec

import (
	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// Names that moved to speccore (the part of spec the agent links: the decoder,
// the shared field checks, secrets and the agent's config) and is part of
// this package's API for the coordinator, the CLI and the release types.

type (
	Diagnostic       = speccore.Diagnostic
	Diagnostics      = speccore.Diagnostics
	Quantity         = speccore.Quantity
	TLSConfig        = speccore.TLSConfig
	Hook             = speccore.Hook
	WatchKeepOld     = speccore.WatchKeepOld
	ControlPlaneLoss = speccore.ControlPlaneLoss
	ArtifactPrefix   = speccore.ArtifactPrefix
	ArtifactPrefixes = speccore.ArtifactPrefixes
	SecretLayer      = speccore.SecretLayer
	TemplateVars     = speccore.TemplateVars
	AgentConfig      = speccore.AgentConfig
)

const (
	WatchKeepHot           = speccore.WatchKeepHot
	WatchKeepStopped       = speccore.WatchKeepStopped
	ControlPlaneLossHold   = speccore.ControlPlaneLossHold
	ControlPlaneLossRevert = speccore.ControlPlaneLossRevert
	DefaultServerHTTPAddr  = speccore.DefaultServerHTTPAddr
	DriverSystemd          = speccore.DriverSystemd
	DriverProcess          = speccore.DriverProcess
	EnvEncrypt             = speccore.EnvEncrypt
	EnvEncryptFile         = speccore.EnvEncryptFile
	MaxBakeDuration        = speccore.MaxBakeDuration
	MaxSourceBytes         = speccore.MaxSourceBytes
)

// ErrSecretConflict is speccore.ErrSecretConflict.
var ErrSecretConflict = speccore.ErrSecretConflict

// ReadSecretFile is speccore.ReadSecretFile.
func ReadSecretFile(path string) (string, error) { return speccore.ReadSecretFile(path) }

// PickSecret is speccore.PickSecret.
func PickSecret(layers ...SecretLayer) (secret, from string, err error) {
	return speccore.PickSecret(layers...)
}

// ResolveGossipKey is speccore.ResolveGossipKey.
func ResolveGossipKey(key, file *string, flagKey, flagFile string) (string, error) {
	return speccore.ResolveGossipKey(key, file, flagKey, flagFile)
}

// GossipKeyBytes is speccore.GossipKeyBytes.
func GossipKeyBytes(key string) []byte { return speccore.GossipKeyBytes(key) }

// ParseArtifactPrefixes is speccore.ParseArtifactPrefixes.
func ParseArtifactPrefixes(raw []string) (ArtifactPrefixes, error) {
	return speccore.ParseArtifactPrefixes(raw)
}

// RedactURL is speccore.RedactURL.
func RedactURL(raw string) string { return speccore.RedactURL(raw) }

// RedactURLsIn is speccore.RedactURLsIn.
func RedactURLsIn(s string) string { return speccore.RedactURLsIn(s) }

// Expand is speccore.Expand.
func Expand(s string, v TemplateVars) string { return speccore.Expand(s, v) }

// ParseAgentConfig is speccore.ParseAgentConfig.
func ParseAgentConfig(filename string, src []byte) (*AgentConfig, error) {
	return speccore.ParseAgentConfig(filename, src)
}

// ParseQuantity is speccore.ParseQuantity.
func ParseQuantity(s string) (Quantity, error) { return speccore.ParseQuantity(s) }
