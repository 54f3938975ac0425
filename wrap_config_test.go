package main

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/lifecycle"
)

// clearEnv unsets every variable the config reads, for the test's duration.
func clearEnv(t *testing.T) {
	ty := reflect.TypeOf(Config{})
	for i := 0; i < ty.NumField(); i++ {
		name := ty.Field(i).Tag.Get("envconfig")
		if name == "" {
			continue
		}
		t.Setenv(name, "") // restores the old value after the test
		os.Unsetenv(name)
	}
}

func TestConfigDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"AdminAPI", c.AdminAPI, ""},
		{"QuitWithoutEnvoyTimeout", c.QuitWithoutEnvoyTimeout, lifecycle.DefaultQuitWithoutEnvoy},
		{"WaitForEnvoyTimeout", c.WaitForEnvoyTimeout, time.Duration(0)},
		{"QuitRequestTimeout", c.QuitRequestTimeout, 5 * time.Second},
		{"LogLevel", c.LogLevel, "info"},
		{"LogFormat", c.LogFormat, "text"},
		{"PollMax", c.PollMax, 44 * time.Millisecond},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestConfigCompatibility(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		check func(*Config) string
	}{
		{"USE_ISTIO_ENDPOINT fills both addresses", map[string]string{"USE_ISTIO_ENDPOINT": "true"}, func(c *Config) string {
			if c.AdminAPI != "http://127.0.0.1:15000" || c.IstioQuitAPI != "http://127.0.0.1:15020" {
				return "got " + c.AdminAPI + " and " + c.IstioQuitAPI
			}
			return ""
		}},
		{"USE_ISTIO_ENDPOINT keeps an explicit admin", map[string]string{"USE_ISTIO_ENDPOINT": "true", "ENVOY_ADMIN_API": "http://localhost:9901"}, func(c *Config) string {
			if c.AdminAPI != "http://localhost:9901" {
				return "got " + c.AdminAPI
			}
			return ""
		}},
		{"ENVOY_PREFLIGHT_LOGGING=false silences", map[string]string{"ENVOY_PREFLIGHT_LOGGING": "false"}, func(c *Config) string {
			if c.LogLevel != "error" {
				return "level " + c.LogLevel
			}
			return ""
		}},
		{"SCUTTLE_LOGGING=false silences", map[string]string{"SCUTTLE_LOGGING": "false"}, func(c *Config) string {
			if c.LogLevel != "error" {
				return "level " + c.LogLevel
			}
			return ""
		}},
		{"explicit level wins over the switches", map[string]string{"SCUTTLE_LOGGING": "false", "ENVOY_LIFECYCLE_LOG_LEVEL": "DEBUG"}, func(c *Config) string {
			if c.LogLevel != "debug" {
				return "level " + c.LogLevel
			}
			return ""
		}},
		{"WAIT_FOR alone drops the default give-up", map[string]string{"WAIT_FOR_ENVOY_TIMEOUT": "30s"}, func(c *Config) string {
			if c.QuitWithoutEnvoyTimeout != 0 || c.WaitForEnvoyTimeout != 30*time.Second {
				return "got " + c.QuitWithoutEnvoyTimeout.String() + ", " + c.WaitForEnvoyTimeout.String()
			}
			return ""
		}},
		{"QUIT_WITHOUT=0 waits forever", map[string]string{"QUIT_WITHOUT_ENVOY_TIMEOUT": "0"}, func(c *Config) string {
			if c.QuitWithoutEnvoyTimeout != 0 {
				return "got " + c.QuitWithoutEnvoyTimeout.String()
			}
			return ""
		}},
		{"generic endpoints are trimmed", map[string]string{"GENERIC_QUIT_ENDPOINTS": " http://127.0.0.1:1/a , http://[::1]:2/b ,"}, func(c *Config) string {
			if len(c.GenericQuitEndpoints) != 2 || c.GenericQuitEndpoints[1] != "http://[::1]:2/b" {
				return strings.Join(c.GenericQuitEndpoints, "|")
			}
			return ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := LoadConfig()
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ name, value string }{
		{"ENVOY_ADMIN_API", "localhost:15000"},
		{"ENVOY_ADMIN_API", "http://"},
		{"ENVOY_ADMIN_API", "gopher://127.0.0.1:70"},
		{"ENVOY_KILL_API", "127.0.0.1/quitquitquit"},
		// The peers' own variables take every value the peers took
		// (TestPeerValues); ours are strict.
		{"ENVOY_LIFECYCLE_REQUEST_TIMEOUT", "0s"},
		{"ENVOY_LIFECYCLE_STOP_TIMEOUT", "5 s"},
		{"ENVOY_LIFECYCLE_DRAIN_DEADLINE", "-5s"},
		{"ENVOY_LIFECYCLE_DRAIN", "sure"},
		{"ENVOY_LIFECYCLE_GRACE_PERIOD", "30d"},
		{"ENVOY_LIFECYCLE_POLL_INITIAL", "1s"},
		{"ENVOY_LIFECYCLE_LOG_LEVEL", "verbose"},
		{"ENVOY_LIFECYCLE_QUIT_RETRIES", "many"},
	}
	// GENERIC_QUIT_ENDPOINTS is inherited from scuttle, which POSTed any
	// value: a bad item is skipped with a warning, which hides it too.
	t.Run("GENERIC_QUIT_ENDPOINTS warning", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:1/a,gopher://u:s3cret@127.0.0.1/b")
		cfg, err := LoadConfig()
		if err != nil {
			t.Fatalf("LoadConfig got %v, want a warning only", err)
		}
		if len(cfg.warnings) == 0 {
			t.Fatal("no warning for a gopher:// endpoint")
		}
		for _, w := range cfg.warnings {
			if msg := w.String(); strings.Contains(msg, "s3cret") {
				t.Errorf("warning got %q, want the password hidden", msg)
			}
		}
	})
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.name, tc.value)
			_, err := LoadConfig()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error got %v, want a *ConfigError", err)
			}
			msg := err.Error()
			if ce.Name != tc.name || !strings.Contains(msg, tc.value) || !strings.Contains(msg, "valid:") || strings.Contains(msg, "\n") {
				t.Errorf("error got %q, want one line naming %s, echoing %q and listing what is valid", msg, tc.name, tc.value)
			}
		})
	}
}

// TestConfigErrorsRedact: a refused URL setting is echoed without its
// password or token, with or without a scheme.
func TestConfigErrorsRedact(t *testing.T) {
	cases := []struct{ name, value string }{
		{"ENVOY_ADMIN_API", "http://u:s3cret@127.0.0.1:15000"},
		{"ENVOY_ADMIN_API", "u:s3cret@127.0.0.1:15000"},
		{"ISTIO_QUIT_API", "http://127.0.0.1:15020/?token=s3cret"},
		{"ENVOY_KILL_API", "u:s3cret@127.0.0.1/quitquitquit"},
		{"ENVOY_KILL_API", "ftp://u:s3cret@127.0.0.1/quit?key=s3cret"},
		{"ENVOY_LIFECYCLE_READY_URL", "u:s3cret@127.0.0.1:8080/ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.name, tc.value)
			_, err := LoadConfig()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Name != tc.name {
				t.Fatalf("error got %v, want a *ConfigError naming %s", err, tc.name)
			}
			if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "REDACTED") {
				t.Errorf("error got %q, want the value echoed with REDACTED for its secret", msg)
			}
		})
	}
	t.Run("--envoy-admin", func(t *testing.T) {
		clearEnv(t)
		_, _, err := parseMgrConfig(forManager, []string{"--envoy-admin=http://127.0.0.1:9901/?token=s3cret"})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "token=REDACTED") {
			t.Errorf("error got %v, want the address echoed with token=REDACTED", err)
		}
	})
}
