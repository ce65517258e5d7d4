package resolver

// WithAnswersBound sets how many answers (claims) the answers cache holds,
// so that a test fills it with a few hundred lookups rather than 20,000.
func WithAnswersBound(n int) Option { return func(o *options) { o.answers = n } }

// WithCachesBound bounds the tag-list, metadata, descriptor and failure
// caches to about n entries each, so that a test fills them with a few
// dozen lookups.
func WithCachesBound(n int) Option {
	return func(o *options) { o.tags, o.metas, o.descs, o.failures = n*tagListOverhead, n, n, n }
}
