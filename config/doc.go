// Package config loads the webhook's config file (Argo CD Image Updater's
// registries.conf schema plus a policy block), validates it strictly, and
// watches it so a change takes effect without a restart while a bad change
// leaves the last good config in force.
package config
