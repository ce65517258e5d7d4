// Package config loads the webhook's config file (Argo CD Image Updater's
// registries.conf schema plus a policy block) strictly into plain data
// (Decode; the policy block defaulted, then validated), builds the live
// registries.Set from it (Build), and holds the admission policy the webhook
// acts on (Mode, OnError, each entry's RegistryPolicy). Steering is what a
// source (annotations, policy.images, defaults) says of an image, and Query
// puts one container's lookup together once. The Watcher reloads the file so
// a change takes effect without a restart while a bad change leaves the last
// good config in force.
package config
