package worker

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/job"
)

// openNATS takes o.NATS, or connects to the configured servers (in dev mode, to
// one it starts), and checks that the biggest result fits the server's
// max_payload: otherwise a job could stay in the stream for want of room for
// its result.
func (s *Worker) openNATS(o Options) (err error) {
	if s.nc = o.NATS; s.nc != nil {
		s.desc["nats"] = dial.RedactURLs(s.nc.ConnectedUrl())
	} else if s.nc, err = s.connectNATS(); err != nil {
		return err
	}
	if most := job.MaxTargetsFor(int(s.nc.MaxPayload())); s.cfg.MaxTargets > most {
		return fmt.Errorf("PUSH_MAX_TARGETS=%d is over %d, the most targets per job whose result fits the NATS server's max_payload of %d bytes: "+
			"lower PUSH_MAX_TARGETS, or raise the server's max_payload", s.cfg.MaxTargets, most, s.nc.MaxPayload())
	}
	return nil
}

// connectNATS connects to the configured servers, or in dev mode starts one.
func (s *Worker) connectNATS() (*nats.Conn, error) {
	nc := s.cfg.NATS
	if s.cfg.Dev() {
		dev, err := startDevNATS(s.cfg.DataDir, s.cfg.DevNATSPort)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, dev.stop)
		nc.URL = dev.url
		s.log.Info("dev mode: embedded NATS JetStream server (NATS_URL is unset)", zap.String("url", dev.url), zap.String("store", dev.dir))
	}
	opts, err := dial.NATSOptions(nc)
	if err != nil {
		return nil, err
	}
	conn, err := dial.NATS(nc.URL, opts)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = conn.Drain() })
	s.desc["nats"] = dial.RedactURLs(nc.URL)
	return conn, nil
}
