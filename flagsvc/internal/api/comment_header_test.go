package api_test

import (
	"strings"
	"testing"
)

// TestRequestCommentIsAudited: a write whose body has no comment (a revocation, here with its
// cascade) records the request's X-Switchyard-Comment, percent-decoded UTF-8, on every audit
// entry it writes, after the entry's own comment; a body's comment and the header's are both
// kept. A header that is not percent-encoded UTF-8, or too long, is refused naming the header,
// and nothing is changed.
func TestRequestCommentIsAudited(t *testing.T) {
	s := newStack(t)
	const header = "X-Switchyard-Comment"
	leaked, child, _, _, _ := s.tokenFamily()

	s.refused(400, header, "DELETE", "/api/v1/tokens/"+leaked.ID, nil, header, "100%")
	s.refused(400, header, "DELETE", "/api/v1/tokens/"+leaked.ID, nil, header, "%FF%FE")
	s.refused(422, header, "DELETE", "/api/v1/tokens/"+leaked.ID, nil, header, strings.Repeat("x", 1001))
	if r := s.req("GET", "/api/v1/me", leaked.Token, nil); r.Status != 200 {
		t.Fatalf("the token after refused revocations: %d, want 200 (nothing revoked)", r.Status)
	}

	s.must(204, "DELETE", "/api/v1/tokens/"+leaked.ID+"?cascade=true", nil, nil, header, "r%C3%A9voqu%C3%A9%20apr%C3%A8s%20une%20fuite%20(100%25)")
	comments, _ := s.auditComments("token.revoke")
	const said = "révoqué après une fuite (100%)"
	if comments["leaked"] != said {
		t.Errorf("the revoked token's entry: comment %q, want %q", comments["leaked"], said)
	}
	if want := "created with token " + leaked.ID + ", revoked with it — " + said; comments[child.Name] != want {
		t.Errorf("a token revoked by the cascade: comment %q, want %q", comments[child.Name], want)
	}

	s.project("shop")
	s.boolFlag("shop", "f")
	s.must(200, "POST", configPath("shop", "f", "production")+"/toggle", map[string]any{"on": true, "comment": "launch"}, nil,
		header, "approved%20by%20ops")
	if comments, _ := s.auditComments("flag_config.toggle"); comments["f"] != "launch — approved by ops" {
		t.Errorf("a toggle with a body comment and a header: comments %q, want %q", comments, "launch — approved by ops")
	}
}
