package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (c *Cluster) start(name, bin string, env []string, args ...string) error {
	logf, err := os.OpenFile(c.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !c.cfg.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	c.log.Info("started", "component", name, "pid", cmd.Process.Pid)
	if c.cfg.Detach {
		return os.WriteFile(c.path(name+".pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644)
	}
	return nil
}

// ErrPortTaken is a component that could not bind a port freePorts had
// found free: another process took it in between (tests start clusters in
// parallel). Starting again picks other ports.
var ErrPortTaken = errors.New("a port picked for the cluster was taken by another process")

// exited reports a component that died, so waits fail fast with its name.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			logFile := c.path("logs", p.name+".log")
			err := fmt.Errorf("%s exited: %v (see %s)", p.name, p.err, logFile)
			if tail, _ := os.ReadFile(logFile); bytes.Contains(tail[max(0, len(tail)-4096):], []byte("address already in use")) {
				err = fmt.Errorf("%w: %w", ErrPortTaken, err)
			}
			return err
		default:
		}
	}
	return nil
}

func (c *Cluster) poll(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		if last != nil {
			err = fmt.Errorf("%w (last: %v)", err, last)
		}
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func (c *Cluster) waitHTTP(ctx context.Context, what, url string, timeout time.Duration) error {
	return c.poll(ctx, what, timeout, func(ctx context.Context) (bool, error) {
		_, err := adminGet(ctx, url)
		return err == nil, err
	})
}

// localClient trusts the local cluster's self-signed serving certificates
// (the API server's, the kubelet's).
var localClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback and the harness's bridge, self-signed certificates
}}

// adminGet reads url as the cluster's admin and fails unless it answers 200.
func adminGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := localClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, err
}

func (c *Cluster) waitTCP(ctx context.Context, what, addr string, timeout time.Duration) error {
	return c.poll(ctx, what, timeout, func(ctx context.Context) (bool, error) {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
}
