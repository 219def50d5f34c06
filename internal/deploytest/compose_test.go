package deploytest

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every INTAKE_* variable the deploy sets must be one intake reads: a
// misspelt one is silently ignored and leaves a default in place.
func TestComposeSettingsAreReal(t *testing.T) {
	t.Parallel()
	known := settingEnvVars()
	check := func(where, key string) {
		if strings.HasPrefix(key, "INTAKE_") && known[key] == "" {
			var names []string
			for k := range known {
				names = append(names, k)
			}
			slices.Sort(names)
			t.Errorf("%s sets %s, which is not a setting of intake; the settings are %s", where, key, strings.Join(names, ", "))
		}
	}

	envFiles := []string{composeEnvPath}
	cf := loadCompose(t)
	for name, s := range cf.Services {
		for k := range s.environment(t) {
			check(composePath+" service "+name, k)
		}
		envFiles = append(envFiles, s.envFiles(t)...)
	}
	slices.Sort(envFiles)
	for _, f := range slices.Compact(envFiles) {
		_, entries := loadEnvFile(t, f)
		for _, e := range entries {
			check(f+" line "+strconv.Itoa(e.line), e.key)
		}
	}
	for k := range finalStage(t, loadDockerfile(t)).env(t) {
		check(dockerfilePath+" ENV", k)
	}
}

// Every setting in compose.env says what it is for.
func TestComposeEnvIsCommented(t *testing.T) {
	t.Parallel()
	_, entries := loadEnvFile(t, composeEnvPath)
	if len(entries) == 0 {
		t.Fatalf("%s sets nothing", composeEnvPath)
	}
	for _, e := range entries {
		if !e.commented {
			t.Errorf("%s line %d: %s has no comment above it (or above its group)", composeEnvPath, e.line, e.key)
		}
	}
}

// What intake sees in the compose deploy must be a configuration that
// `intake serve` accepts, or the container exits at start.
func TestComposeEnvIsValidConfig(t *testing.T) {
	t.Parallel()
	vars, _ := loadEnvFile(t, composeEnvPath)
	c := resolveConfig(t, vars)
	if err := c.Validate(); err != nil {
		t.Errorf("%s is not a valid configuration:\n%v", composeEnvPath, err)
	}

	// The same, with everything the container adds (the image's ENV, the
	// service's environment).
	s, ok := loadCompose(t).Services[intakeService]
	if !ok {
		t.Fatalf("%s has no %q service", composePath, intakeService)
	}
	c = resolveConfig(t, effectiveEnv(t, s))
	if err := c.Validate(); err != nil {
		t.Errorf("the %s service's environment is not a valid configuration:\n%v", intakeService, err)
	}
	// The deploy exists to run intake on PostgreSQL and S3.
	if c.Store != "s3" || !c.UsesPostgres() {
		t.Errorf("the %s service has store %q and PostgreSQL %v; want s3 and true", intakeService, c.Store, c.UsesPostgres())
	}
}

// jobs are the one-shot services: those another service waits for to exit.
func jobs(t *testing.T, cf composeFile) map[string]bool {
	t.Helper()
	j := map[string]bool{}
	for _, s := range cf.Services {
		for dep, cond := range s.dependsOn(t) {
			if cond == "service_completed_successfully" {
				j[dep] = true
			}
		}
	}
	return j
}

// A long-running service without a health check cannot be waited for, and
// docker compose ps cannot say it is broken.
func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	oneShot := jobs(t, cf)
	for name, s := range cf.Services {
		if oneShot[name] {
			// A restart policy would run it again after it succeeded, or
			// for ever.
			if s.Restart != "" && s.Restart != "no" {
				t.Errorf("one-shot service %s has restart %q; want \"no\"", name, s.Restart)
			}
			continue
		}
		test := s.healthTest(t)
		if test == nil {
			t.Errorf("service %s has no healthcheck; add one, or if it is a one-shot job make a service depend on it with condition service_completed_successfully", name)
			continue
		}
		if test[0] != "CMD" && test[0] != "CMD-SHELL" {
			t.Errorf("service %s: healthcheck test %q must start with CMD or CMD-SHELL", name, test)
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("service %s has no restart policy; want unless-stopped", name)
		}
	}
}

// exactTag is a version number of at least major.minor, optionally with a
// suffix: 1.26.8-bookworm, 17.6-alpine, v1.8.0.
var exactTag = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)*([-_.+][0-9A-Za-z._-]+)?$`)

// pinned says what is wrong with an image reference, or "".
func pinned(ref string) string {
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return "has no tag, which means latest"
	case tag == "latest":
		return "is :latest"
	case !exactTag.MatchString(tag):
		return "is not pinned to an exact version (want e.g. name:1.2.3)"
	}
	return ""
}

// A moving tag makes the deploy change under its users between two pulls.
func TestComposeImagesPinned(t *testing.T) {
	t.Parallel()
	for name, s := range loadCompose(t).Services {
		switch {
		case s.Build != nil:
			continue // built from this repository
		case s.Image == "":
			t.Errorf("service %s has neither image nor build", name)
		default:
			if msg := pinned(s.Image); msg != "" {
				t.Errorf("service %s: image %s %s", name, s.Image, msg)
			}
		}
	}
}

// An undeclared named volume fails `docker compose up`; a declared but
// unused one is a leftover.
func TestComposeVolumesDeclared(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	used := map[string]bool{}
	for name, s := range cf.Services {
		for _, v := range s.namedVolumes(t) {
			used[v] = true
			if _, ok := cf.Volumes[v]; !ok {
				t.Errorf("service %s mounts volume %s, which is not declared under the top-level volumes", name, v)
			}
		}
	}
	for v := range cf.Volumes {
		if !used[v] {
			t.Errorf("volume %s is declared but no service mounts it", v)
		}
	}
	// intake's data dir must be on a volume, or buffered parts and (with
	// SQLite) the catalog vanish with the container.
	s := cf.Services[intakeService]
	dataDir := resolveConfig(t, effectiveEnv(t, s)).DataDir
	mounted := false
	for _, v := range s.Volumes {
		if str, ok := v.(string); ok && strings.HasSuffix(str, ":"+dataDir) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("service %s: nothing is mounted at its data dir %s", intakeService, dataDir)
	}
}

// The published port, the health check and INTAKE_LISTEN must agree, and
// intake must listen on all interfaces: 127.0.0.1 inside a container is
// unreachable from outside it.
func TestComposePortsMatchListen(t *testing.T) {
	t.Parallel()
	s, ok := loadCompose(t).Services[intakeService]
	if !ok {
		t.Fatalf("%s has no %q service", composePath, intakeService)
	}
	listen := resolveConfig(t, effectiveEnv(t, s)).Listen
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("INTAKE_LISTEN %q: %v", listen, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("the %s service listens on %q; inside a container it must listen on all interfaces, e.g. :%s", intakeService, listen, port)
	}
	published := s.containerPorts(t)
	if len(published) == 0 {
		t.Errorf("the %s service publishes no port", intakeService)
	}
	for _, p := range published {
		if p != port {
			t.Errorf("the %s service publishes container port %s; intake listens on %s", intakeService, p, port)
		}
	}
	if hc := strings.Join(s.healthTest(t), " "); !strings.Contains(hc, "127.0.0.1:"+port+"/readyz") {
		t.Errorf("the %s service's healthcheck %q does not probe http://127.0.0.1:%s/readyz", intakeService, hc, port)
	}
}

// intake starts only once its database and storage answer and the bucket
// exists; anything weaker races them at every `docker compose up`.
func TestComposeDependencies(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	oneShot := jobs(t, cf)
	for name, s := range cf.Services {
		for dep, cond := range s.dependsOn(t) {
			want := "service_healthy"
			if oneShot[dep] {
				want = "service_completed_successfully"
			}
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			} else if cond != want {
				t.Errorf("service %s depends on %s with condition %s; want %s", name, dep, cond, want)
			}
		}
	}
	deps := cf.Services[intakeService].dependsOn(t)
	for name := range cf.Services {
		if _, ok := deps[name]; name != intakeService && !ok {
			t.Errorf("service %s does not depend on %s", intakeService, name)
		}
	}
	if len(oneShot) == 0 {
		t.Errorf("no service waits for a bucket-creation job (condition service_completed_successfully)")
	}
}

// The services are configured in several places that must agree: intake's
// database URL and postgres's user, the S3 endpoint, keys and region and
// the s3 server's, the bucket the job creates and the one intake uses, the
// shutdown timeout and the time Docker gives it.
func TestComposeServicesAgree(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	intake := cf.Services[intakeService]
	env := effectiveEnv(t, intake)
	c := resolveConfig(t, env)

	t.Run("database", func(t *testing.T) {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil {
			t.Fatalf("INTAKE_DATABASE_URL does not parse") // no %v: it holds the password
		}
		db, ok := cf.Services[u.Hostname()]
		if !ok || !strings.HasPrefix(db.Image, "postgres:") {
			t.Fatalf("INTAKE_DATABASE_URL names host %q; want the postgres service's name", u.Hostname())
		}
		pg := db.environment(t)
		pass, _ := u.User.Password()
		if u.Port() != "5432" {
			t.Errorf("INTAKE_DATABASE_URL port %q; the postgres image listens on 5432", u.Port())
		}
		if u.User.Username() != pg["POSTGRES_USER"] {
			t.Errorf("INTAKE_DATABASE_URL user %q; POSTGRES_USER is %q", u.User.Username(), pg["POSTGRES_USER"])
		}
		if pass == "" || pass != pg["POSTGRES_PASSWORD"] {
			t.Errorf("INTAKE_DATABASE_URL's password differs from POSTGRES_PASSWORD of service %s", u.Hostname())
		}
		if strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] {
			t.Errorf("INTAKE_DATABASE_URL database %q; POSTGRES_DB is %q", u.Path, pg["POSTGRES_DB"])
		}
		// pg_isready must ask for the same user and database.
		if hc := strings.Join(db.healthTest(t), " "); !strings.Contains(hc, "pg_isready") || !strings.Contains(hc, "-U "+pg["POSTGRES_USER"]) {
			t.Errorf("postgres healthcheck %q; want pg_isready -U %s", hc, pg["POSTGRES_USER"])
		}
	})

	t.Run("s3", func(t *testing.T) {
		u, err := url.Parse(c.S3Endpoint)
		if err != nil || c.S3Endpoint == "" {
			t.Fatalf("INTAKE_S3_ENDPOINT %q is not a URL", c.S3Endpoint)
		}
		s3, ok := cf.Services[u.Hostname()]
		if !ok {
			t.Fatalf("INTAKE_S3_ENDPOINT names host %q, which is not a service", u.Hostname())
		}
		gw := s3.environment(t)
		_, gwPort, err := net.SplitHostPort(gw["VGW_PORT"])
		if err != nil {
			t.Fatalf("service %s: VGW_PORT %q is not [host]:port", u.Hostname(), gw["VGW_PORT"])
		}
		if u.Port() != gwPort {
			t.Errorf("INTAKE_S3_ENDPOINT port %q; service %s listens on %s", u.Port(), u.Hostname(), gwPort)
		}
		if hc := strings.Join(s3.healthTest(t), " "); !strings.Contains(hc, ":"+gwPort+gw["VGW_HEALTH"]) || gw["VGW_HEALTH"] == "" {
			t.Errorf("service %s: healthcheck %q does not probe its VGW_HEALTH path %q on port %s", u.Hostname(), hc, gw["VGW_HEALTH"], gwPort)
		}
		if !c.S3PathStyle {
			t.Errorf("INTAKE_S3_PATH_STYLE is false; %s.%s does not resolve inside the compose network", c.S3Bucket, u.Hostname())
		}
		region := gw["VGW_REGION"]
		if region == "" {
			region = "us-east-1" // versitygw's default
		}
		if c.S3Region != region {
			t.Errorf("INTAKE_S3_REGION %q; service %s signs for region %q", c.S3Region, u.Hostname(), region)
		}
		if env["AWS_ACCESS_KEY_ID"] == "" || env["AWS_ACCESS_KEY_ID"] != gw["ROOT_ACCESS_KEY_ID"] {
			t.Errorf("intake's AWS_ACCESS_KEY_ID %q differs from ROOT_ACCESS_KEY_ID %q of service %s", env["AWS_ACCESS_KEY_ID"], gw["ROOT_ACCESS_KEY_ID"], u.Hostname())
		}
		if env["AWS_SECRET_ACCESS_KEY"] == "" || env["AWS_SECRET_ACCESS_KEY"] != gw["ROOT_SECRET_ACCESS_KEY"] {
			t.Errorf("intake's AWS_SECRET_ACCESS_KEY differs from ROOT_SECRET_ACCESS_KEY of service %s", u.Hostname())
		}
	})

	t.Run("bucket job", func(t *testing.T) {
		for name := range jobs(t, cf) {
			job := cf.Services[name]
			jenv := effectiveEnv(t, job)
			cmd := strings.Join(stringList(t, "command", job.Command), " ")
			if !strings.Contains(cmd, "create-bucket") {
				t.Errorf("job %s does not create a bucket: %q", name, cmd)
			}
			// Compose turns "$$" into "$" for the job's shell.
			for v, want := range map[string]string{
				"INTAKE_S3_BUCKET":      c.S3Bucket,
				"INTAKE_S3_ENDPOINT":    c.S3Endpoint,
				"INTAKE_S3_REGION":      c.S3Region,
				"AWS_ACCESS_KEY_ID":     env["AWS_ACCESS_KEY_ID"],
				"AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
			} {
				if jenv[v] != want {
					t.Errorf("job %s sees %s %q; intake sees %q", name, v, jenv[v], want)
				}
			}
			for _, v := range []string{"INTAKE_S3_BUCKET", "INTAKE_S3_ENDPOINT"} {
				if !strings.Contains(cmd, "$$"+v) {
					t.Errorf("job %s's command does not use $$%s", name, v)
				}
			}
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		// Docker's default is 10s, then SIGKILL: in-flight PATCHes would be
		// cut off mid-drain.
		grace, err := time.ParseDuration(intake.StopGracePeriod)
		if err != nil {
			t.Fatalf("service %s: stop_grace_period %q: %v", intakeService, intake.StopGracePeriod, err)
		}
		if grace <= c.ShutdownTimeout {
			t.Errorf("service %s: stop_grace_period %s is not longer than its shutdown timeout %s", intakeService, grace, c.ShutdownTimeout)
		}
	})
}

// A bare "$" is interpolated from the shell running docker compose, so the
// deploy would depend on whoever runs it; every "$" meant for a container
// must be written "$$".
func TestComposeNeedsNoShellEnvironment(t *testing.T) {
	t.Parallel()
	for n, line := range strings.Split(readFile(t, composePath), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // compose does not interpolate comments
		}
		if strings.Contains(strings.ReplaceAll(line, "$$", ""), "$") {
			t.Errorf("%s line %d: %q interpolates from the shell's environment; write $$ for a literal $", composePath, n+1, line)
		}
	}
}
