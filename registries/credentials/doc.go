// Package credentials is where registry credentials come from: a source as
// written in the config (env:, secret:, pullsecret:, ext:, aws:, gcp:,
// azure:), read, cached and refreshed for the whole process; and, for
// imagepullsecrets, the pull secrets an admitted object presents, read per
// admission (pullsecrets.go). It is the only package that reads Secrets from
// the API server or runs processes (ext: scripts, reaped as a subreaper). It
// never prints a credential.
package credentials
