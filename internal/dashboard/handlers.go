package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

//go:embed assets
var assets embed.FS

// assetVersion names this build's static files (a hash of them). Pages
// link them as static/NAME?v=<assetVersion>, which browsers may keep for
// good: a page load then fetches the page alone, not its script and
// stylesheet each time (they are most of a small page's load time).
var assetVersion = func() string {
	h := sha256.New()
	err := fs.WalkDir(assets, "assets/static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		h.Write([]byte(path + "\x00"))
		h.Write(b)
		return err
	})
	if err != nil {
		panic("dashboard: read embedded static files: " + err.Error())
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"assetVersion": func() string { return assetVersion },
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}).ParseFS(assets, "assets/*.html"))

// Bounds on what a request may carry.
const (
	maxFormBytes = 16 << 10
	maxReasonLen = 1000
	maxIDLen     = 256
)

// actionCalls maps an action's URL name to its operator API call.
var actionCalls = map[string]func(API, context.Context, *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error){
	"pause": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.PauseRelease(c, r)
	},
	"resume": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.ResumeRelease(c, r)
	},
	"approve": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.ApproveRelease(c, r)
	},
	"abort": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.AbortRelease(c, r)
	},
	"rollback": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.RollbackRelease(c, r)
	},
	"promote": func(a API, c context.Context, r *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		return a.PromoteRelease(c, r)
	},
}

func (d *Dashboard) routes() {
	p := d.cfg.Prefix
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	files := http.StripPrefix(p+"static/", http.FileServerFS(static))
	m.HandleFunc("GET "+p+"static/", func(w http.ResponseWriter, r *http.Request) {
		// Only a link of this build may be kept; anything else is
		// fetched afresh (ServeHTTP's no-store).
		if r.URL.Query().Get("v") == assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
	m.HandleFunc("GET "+p+"login", d.loginPage)
	m.HandleFunc("POST "+p+"login", d.login)
	m.HandleFunc("POST "+p+"logout", d.logout)
	m.HandleFunc("GET "+p+"events", d.events)
	m.HandleFunc("POST "+p+"releases/{id}/{action}", d.action)
	m.HandleFunc("GET "+p+"{$}", d.page)
	m.HandleFunc("GET "+p+"releases", d.page)
	m.HandleFunc("GET "+p+"releases/{id}", d.page)
	m.HandleFunc("GET "+p+"hosts/{id}", d.page)
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, http.StatusNotFound, fmt.Sprintf("no dashboard page at %s (or method %s not allowed)", r.URL.Path, r.Method))
	})
	d.mux = m
}

// pageData is what the layout template draws.
type pageData struct {
	Prefix     string
	Title      string
	View       string // template of the view
	Data       any
	Header     headerView
	ACLOff     bool
	Who        string
	Role       string
	CanAct     bool
	CSRF       string
	Live       string // events URL; "" = no live updates
	Flash      string
	Error      string
	Nav        string
	LoginError string
	// NowMS is the server's clock (unix ms) for the bake countdowns.
	NowMS int64
}

// viewFor reads what the page at path (with query q) shows. Every read
// goes through the operator API with the session's token.
func (d *Dashboard) viewFor(ctx context.Context, s session, path string, q url.Values) (name, title string, data any, err error) {
	rest, ok := strings.CutPrefix(path, d.cfg.Prefix)
	if !ok {
		return "", "", nil, status.Errorf(codes.InvalidArgument, "path %q is not under %s", path, d.cfg.Prefix)
	}
	ctx, cancel := d.callCtx(ctx, s.secret)
	defer cancel()
	api := d.cfg.API
	switch {
	case rest == "":
		cell := q.Get("cell")
		if len(cell) > maxIDLen {
			return "", "", nil, status.Errorf(codes.InvalidArgument, "query parameter cell is longer than %d characters", maxIDLen)
		}
		hosts, err := api.ListHosts(ctx, &rollwavev1.ListHostsRequest{Cell: cell})
		if err != nil {
			return "", "", nil, err
		}
		cells, err := api.ListCells(ctx, &rollwavev1.ListCellsRequest{})
		if err != nil {
			return "", "", nil, err
		}
		rels, err := api.ListReleases(ctx, &rollwavev1.ListReleasesRequest{})
		if err != nil {
			return "", "", nil, err
		}
		return "fleet", "Fleet", buildFleet(hosts.GetHosts(), cells.GetCells(), rels.GetReleases(), cell, q.Get("tiles") == "all", d.cfg.AggregateAbove), nil
	case rest == "releases":
		rels, err := api.ListReleases(ctx, &rollwavev1.ListReleasesRequest{})
		if err != nil {
			return "", "", nil, err
		}
		return "releases", "Releases", buildReleases(rels.GetReleases()), nil
	case strings.HasPrefix(rest, "releases/"):
		id, err := pathID(strings.TrimPrefix(rest, "releases/"), "release id")
		if err != nil {
			return "", "", nil, err
		}
		rel, err := api.GetRelease(ctx, &rollwavev1.GetReleaseRequest{Id: id})
		if err != nil {
			return "", "", nil, err
		}
		evs, err := api.ListEvents(ctx, &rollwavev1.ListEventsRequest{ReleaseId: id})
		if err != nil {
			return "", "", nil, err
		}
		return "release", "Release " + id, buildRelease(rel, evs.GetEvents()), nil
	case strings.HasPrefix(rest, "hosts/"):
		id, err := pathID(strings.TrimPrefix(rest, "hosts/"), "host id")
		if err != nil {
			return "", "", nil, err
		}
		hosts, err := api.ListHosts(ctx, &rollwavev1.ListHostsRequest{Host: id, Metrics: true})
		if err != nil {
			return "", "", nil, err
		}
		var hv *rollwavev1.HostView
		for _, h := range hosts.GetHosts() {
			if h.GetHost().GetId() == id {
				hv = h
			}
		}
		if hv == nil {
			return "", "", nil, status.Errorf(codes.NotFound, "no host %q; see the fleet view", id)
		}
		rels, err := api.ListReleases(ctx, &rollwavev1.ListReleasesRequest{})
		if err != nil {
			return "", "", nil, err
		}
		evs, err := api.ListEvents(ctx, &rollwavev1.ListEventsRequest{Limit: 2000})
		if err != nil {
			return "", "", nil, err
		}
		return "host", "Host " + id, buildHost(hv, rels.GetReleases(), evs.GetEvents()), nil
	}
	return "", "", nil, status.Errorf(codes.NotFound, "no dashboard page at %s", path)
}

// pathID checks an id taken from the URL.
func pathID(s, what string) (string, error) {
	if s == "" || len(s) > maxIDLen || strings.ContainsAny(s, "/\x00") {
		return "", status.Errorf(codes.InvalidArgument, "%s %q must be 1 to %d characters without '/'", what, s, maxIDLen)
	}
	return s, nil
}

func navOf(view string) string {
	switch view {
	case "releases", "release":
		return "releases"
	}
	return "fleet"
}

func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	s, err := d.sessionOf(w, r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	name, title, data, err := d.viewFor(r.Context(), s, r.URL.Path, r.URL.Query())
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	live := d.cfg.Prefix + "events?" + url.Values{"path": {r.URL.RequestURI()}}.Encode()
	d.render(w, http.StatusOK, "layout", pageData{Prefix: d.cfg.Prefix, Title: title, View: name, Data: data,
		Header: d.header(r.Context(), s.secret), ACLOff: !d.cfg.ACLEnabled, Who: s.name, Role: s.role,
		CanAct: s.canAct(), CSRF: s.csrf, Live: live, Flash: flash(r.URL.Query().Get("done")), Nav: navOf(name), NowMS: time.Now().UnixMilli()})
}

// flash is the note shown after an action ("approve" → "approve done").
func flash(action string) string {
	if _, ok := actionCalls[action]; ok {
		return action + " accepted"
	}
	return ""
}

func (d *Dashboard) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		d.log.Error("render dashboard page", "template", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// renderView renders one view's fragment (what the live stream sends).
func renderView(data pageData) (string, error) {
	var buf bytes.Buffer
	err := templates.ExecuteTemplate(&buf, "view", data)
	return buf.String(), err
}

// httpCode maps an operator API error to an HTTP status.
func httpCode(err error) int {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unavailable, codes.DeadlineExceeded:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

func errMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// apiFail answers a failed read: the login page when the token is
// missing or refused, an error page otherwise.
func (d *Dashboard) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	code := httpCode(err)
	if code == http.StatusUnauthorized && r.Method == http.MethodGet {
		http.Redirect(w, r, d.cfg.Prefix+"login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
		return
	}
	d.fail(w, r, code, errMessage(err))
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d.render(w, code, "layout", pageData{Prefix: d.cfg.Prefix, Title: http.StatusText(code), View: "error",
		ACLOff: !d.cfg.ACLEnabled, Error: msg})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if !d.cfg.ACLEnabled {
		http.Redirect(w, r, d.cfg.Prefix, http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "layout", pageData{Prefix: d.cfg.Prefix, Title: "Log in", View: "login",
		CSRF: d.csrfFor(w, r), Data: safeNext(d.cfg.Prefix, r.URL.Query().Get("next"))})
}

// safeNext keeps a post-login redirect on the dashboard.
func safeNext(prefix, next string) string {
	if !strings.HasPrefix(next, prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return prefix
	}
	return next
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if code, msg := checkPost(r); code != 0 {
		d.fail(w, r, code, msg)
		return
	}
	next := safeNext(d.cfg.Prefix, r.PostFormValue("next"))
	secret := strings.TrimSpace(r.PostFormValue("token"))
	bad := func(code int, msg string) {
		d.render(w, code, "layout", pageData{Prefix: d.cfg.Prefix, Title: "Log in", View: "login",
			CSRF: d.csrfFor(w, r), Data: next, LoginError: msg})
	}
	if secret == "" || len(secret) > maxSecretLen {
		bad(http.StatusBadRequest, fmt.Sprintf("field token: paste an ACL token secret (1 to %d characters)", maxSecretLen))
		return
	}
	name, role, err := d.resolve(r.Context(), secret)
	if err != nil {
		bad(httpCode(err), "token refused: "+errMessage(err))
		return
	}
	d.log.Info("dashboard login", "token", name, "role", role, "remote", r.RemoteAddr)
	http.SetCookie(w, d.cookie(tokenCookie, secret, 0))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if code, msg := checkPost(r); code != 0 {
		d.fail(w, r, code, msg)
		return
	}
	http.SetCookie(w, d.cookie(tokenCookie, "", -1))
	http.Redirect(w, r, d.cfg.Prefix+"login", http.StatusSeeOther)
}

// action runs one release action through the operator API, which checks
// the token's role and records the action, its reason and the token's
// name as an audit event.
func (d *Dashboard) action(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		d.fail(w, r, http.StatusBadRequest, "unreadable form (at most 16 KiB): "+err.Error())
		return
	}
	if code, msg := checkPost(r); code != 0 {
		d.fail(w, r, code, msg)
		return
	}
	call, ok := actionCalls[r.PathValue("action")]
	if !ok {
		d.fail(w, r, http.StatusNotFound, fmt.Sprintf("unknown action %q: want pause, resume, approve, abort, rollback or promote", r.PathValue("action")))
		return
	}
	id, err := pathID(r.PathValue("id"), "release id")
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || len(reason) > maxReasonLen {
		d.fail(w, r, http.StatusBadRequest, fmt.Sprintf("field reason: say why (1 to %d characters); it goes into the audit log", maxReasonLen))
		return
	}
	skip := false
	switch v := r.PostFormValue("skip_bake"); v {
	case "", "off":
	case "on", "true":
		skip = true
	default:
		d.fail(w, r, http.StatusBadRequest, fmt.Sprintf("field skip_bake: %q must be on or off", v))
		return
	}
	secret := secretOf(r)
	if d.cfg.ACLEnabled && secret == "" {
		d.fail(w, r, http.StatusUnauthorized, "log in with an ACL token first")
		return
	}
	// With ACLs on the API records the token's name and ignores this
	// claim; with ACLs off it is all there is.
	actor := "dashboard"
	if host, _, ok := strings.Cut(r.RemoteAddr, ":"); ok && !d.cfg.ACLEnabled {
		actor = "dashboard@" + host
	}
	ctx, cancel := d.callCtx(r.Context(), secret)
	defer cancel()
	_, err = call(d.cfg.API, ctx, &rollwavev1.ReleaseActionRequest{Id: id, Reason: reason, Actor: actor, SkipBake: skip})
	if err != nil {
		d.log.Info("dashboard action refused", "action", r.PathValue("action"), "release_id", id, "error", err)
		d.fail(w, r, httpCode(err), r.PathValue("action")+" "+id+": "+errMessage(err))
		return
	}
	http.Redirect(w, r, d.cfg.Prefix+"releases/"+url.PathEscape(id)+"?done="+r.PathValue("action"), http.StatusSeeOther)
}

// errStreamsFull is why a stream was refused.
var errStreamsFull = errors.New("too many live-update streams on this server")
