package envoy

import "testing"

func TestParseHelp(t *testing.T) {
	t.Parallel()
	help := "admin commands are:\n  /: Admin home page\n  /drain_listeners (POST): drain listeners\n  /server_info: print server version/status information\n      params: none\n  /healthcheck/fail (POST): cause the server to fail health checks\n"
	got := ParseHelp(help)
	want := map[string]bool{"/": false, "/drain_listeners": true, "/server_info": false, "/healthcheck/fail": true}
	if len(got) != len(want) {
		t.Fatalf("ParseHelp got %v, want %v", got, want)
	}
	for p, post := range want {
		if g, ok := got[p]; !ok || g != post {
			t.Errorf("ParseHelp[%s] got %v, %v, want %v", p, g, ok, post)
		}
	}
}
