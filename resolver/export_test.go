package resolver

// WithAnswersBound sets how many answers (claims) the answers cache holds,
// so that a test fills it with a few hundred lookups rather than 20,000.
func WithAnswersBound(n int) Option { return func(o *options) { o.answers = n } }
