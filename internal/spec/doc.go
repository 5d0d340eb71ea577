// Package spec turns rollwave's HCL v2 (or JSON) files into validated Go
// structs: release specs (ParseRelease), chains (ParseChain) and
// coordinator configuration (ParseServerConfig). The decoder, the checks
// shared with the agent's configuration (ParseAgentConfig) and that
// configuration itself live in internal/spec/speccore, which is all the
// agent links; this package re-exports the names its callers use.
//
// Every problem is reported at once as a Diagnostics error. Each Diagnostic
// names the file, line and column, the field path (for example
// "release.phases.factor"), the bad value when there is one, and what was
// expected. Validation lives in the Validate methods so that values built
// from flags or received over the API get exactly the same checks; the
// parsers run Validate and attach source positions to what it reports.
//
// The package is pure: it reads no files, opens no sockets and consults no
// clock. Only DefaultServerConfig reads the host name.
package spec
