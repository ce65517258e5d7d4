package registrytest

import (
	"net/http"
	"strings"
)

// AuthPerRepository makes s answer each top-level repository namespace
// (team-a/… for owners["team-a"]) only to its owner's Basic credential, as
// a registry with one robot account per team does; password(user) is the
// password each user logs in with. The ping (GET /v2/) takes any of them.
// Push images first: it replaces the fault handler.
func (s *Server) AuthPerRepository(owners map[string]string, password func(user string) string) {
	s.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		deny := func() bool {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return true
		}
		u, p, ok := r.BasicAuth()
		if !ok || p != password(u) {
			return deny()
		}
		if r.URL.Path == "/v2/" {
			return false
		}
		top, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
		if owners[top] != u {
			return deny()
		}
		return false
	})
}
