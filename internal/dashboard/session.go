package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Cookies. The token cookie holds the ACL secret itself: it is HttpOnly
// (no script reads it), SameSite=Strict (no other site's page sends it)
// and Secure under TLS, and it works on every coordinator, so a browser
// sent to another one after a failover stays logged in. The CSRF cookie
// is a random value every form repeats in a hidden field (double
// submit): a page on another origin can neither read the cookie nor make
// the browser send it.
const (
	tokenCookie = "rw_token"
	csrfCookie  = "rw_csrf"
	csrfField   = "csrf"
	// maxSecretLen bounds what is accepted as a token secret (the
	// coordinator makes 64 hex digits).
	maxSecretLen = 256
)

// Roles as the operator API names them (raftfsm.ACLRoles).
const (
	roleRead   = "read"
	roleDeploy = "deploy"
	roleAdmin  = "admin"
)

// session is who a request comes from, as far as drawing the page goes.
type session struct {
	secret string // ACL secret, "" with ACLs off or before login
	csrf   string
	name   string // token name ("" with ACLs off)
	role   string // role of the token; "deploy" with ACLs off
}

// canAct says whether to draw the action buttons. The API decides
// whether an action is allowed; this only hides buttons that would fail.
func (s session) canAct() bool { return s.role == roleDeploy || s.role == roleAdmin }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// csrfFor returns the request's CSRF value, setting the cookie when the
// browser has none yet.
func (d *Dashboard) csrfFor(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	v := randomHex(32)
	http.SetCookie(w, d.cookie(csrfCookie, v, 0))
	return v
}

func (d *Dashboard) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: d.cfg.Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: d.cfg.SecureCookies, SameSite: http.SameSiteStrictMode}
}

// secretOf returns the token secret the browser logged in with, or "".
func secretOf(r *http.Request) string {
	c, err := r.Cookie(tokenCookie)
	if err != nil || len(c.Value) > maxSecretLen {
		return ""
	}
	return c.Value
}

// callCtx is the context of one operator API call on behalf of the
// browser: bounded by CallTimeout and carrying its token.
func (d *Dashboard) callCtx(parent context.Context, secret string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, d.cfg.CallTimeout)
	if secret != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
	}
	return ctx, cancel
}

// resolve asks the API who the secret belongs to. ACLTokenList answers a
// non-admin with its own token only and an admin with every token, so
// one token back is the caller's own and several mean an admin.
func (d *Dashboard) resolve(ctx context.Context, secret string) (name, role string, err error) {
	if !d.cfg.ACLEnabled {
		return "", roleDeploy, nil
	}
	if secret == "" {
		return "", "", status.Error(codes.Unauthenticated, "log in with an ACL token")
	}
	cctx, cancel := d.callCtx(ctx, secret)
	defer cancel()
	resp, err := d.cfg.API.ACLTokenList(cctx, &rollwavev1.ACLTokenListRequest{})
	if err != nil {
		return "", "", err
	}
	switch toks := resp.GetTokens(); len(toks) {
	case 0:
		return "", "", status.Error(codes.Unauthenticated, "ACL token not found")
	case 1:
		return toks[0].GetName(), toks[0].GetRole(), nil
	default:
		return "admin token", roleAdmin, nil
	}
}

// sessionOf resolves the request's session. A missing or refused token
// is an Unauthenticated error (the caller sends the browser to login).
func (d *Dashboard) sessionOf(w http.ResponseWriter, r *http.Request) (session, error) {
	s := session{secret: secretOf(r), csrf: d.csrfFor(w, r)}
	var err error
	s.name, s.role, err = d.resolve(r.Context(), s.secret)
	return s, err
}

// checkPost refuses a POST whose CSRF field does not match its cookie or
// that a browser says came from another site.
func checkPost(r *http.Request) (int, string) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return http.StatusForbidden, "cross-site request refused (Sec-Fetch-Site: " + site + ")"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, "cross-origin request refused (Origin " + o + ")"
		}
	}
	c, err := r.Cookie(csrfCookie)
	form := r.PostFormValue(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		return http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again"
	}
	return 0, ""
}
