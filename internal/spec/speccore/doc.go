// Package speccore is the part of internal/spec that rollwave-agent
// links: the HCL/JSON decoder with its parse limits and file:line
// diagnostics, the field checks release specs and config files share
// (names, durations, URLs, hooks, unit settings, secrets, TLS), the
// release-spec values the agent acts on, and the agent's own config file
// (ParseAgentConfig).
//
// internal/spec builds the release spec, chains and the server config on
// it. Keeping those out of this package keeps their code, their package
// initialisation and their libraries (Masterminds/semver for requires
// constraints) out of the agent, which never validates a release
// (docs/performance.md, "Agent footprint"; cmd/agent's
// TestAgentDependencies keeps it so).
//
// Like internal/spec, the package is pure: it reads no files (except
// secret files named to ReadSecretFile and ResolveGossipKey), opens no
// sockets and consults no clock. Only DefaultAgentConfig reads the host
// name.
package speccore
