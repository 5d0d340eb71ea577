package spec

import (
	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// What moved to speccore (the part of spec the agent links: the decoder,
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

var (
	ErrSecretConflict = speccore.ErrSecretConflict

	ReadSecretFile        = speccore.ReadSecretFile
	PickSecret            = speccore.PickSecret
	ResolveGossipKey      = speccore.ResolveGossipKey
	GossipKeyBytes        = speccore.GossipKeyBytes
	ParseArtifactPrefixes = speccore.ParseArtifactPrefixes
	RedactURL             = speccore.RedactURL
	RedactURLsIn          = speccore.RedactURLsIn
	Expand                = speccore.Expand
	ParseAgentConfig      = speccore.ParseAgentConfig
	ParseQuantity         = speccore.ParseQuantity
)
