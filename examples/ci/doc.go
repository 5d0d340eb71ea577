// Package ci holds no code: it ships a shell pipeline (deploy.sh) and a
// GitHub Actions workflow built on `rollwave release start -wait`, and the
// tests that run them against an in-process cluster.
package ci
