package worker

import (
	"crypto/tls"
	"fmt"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
)

// openMPaaS is the mPaaS client, the one every call of the worker goes
// through: o.Pusher, the configured account, or in dev mode the built-in
// emulator.
func (s *Worker) openMPaaS(o Options) (pipeline.Pusher, error) {
	if o.Pusher != nil {
		s.desc["mpaas"], s.keyName = "(given)", "(given)"
		return o.Pusher, nil
	}
	c := s.cfg
	pc := push.Config{Endpoint: c.MPaaSEndpoint, Region: c.MPaaSRegion, AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessSecret,
		Timeout: c.MPaaSTimeout, MaxConns: c.MaxInFlight * 2}
	switch {
	case len(c.Credentials) > 0:
	case c.AccessKeyID != "":
	case c.MPaaSEndpoint != "" && c.MPaaSEndpoint != push.DefaultEndpoint:
		// Dev mode pointed at the developer's own emulator: signed with the
		// emulator's own key, which a real mPaaS refuses.
		pc.AccessKeyID, pc.AccessKeySecret = mpaassim.OwnKeyID, mpaassim.OwnKeySecret
		s.log.Info("dev mode: pushes go to MPAAS_ENDPOINT signed with the emulator's own key (MPAAS_AK_ENV is unset); a real mPaaS refuses it",
			zap.String("endpoint", c.MPaaSEndpoint), zap.String("key", mpaassim.OwnKeyID))
	default:
		em, err := startEmulator()
		if err != nil {
			return nil, fmt.Errorf("dev mode: starting the mPaaS emulator: %w", err)
		}
		s.closers = append(s.closers, em.stop)
		pc.Endpoint, pc.AccessKeyID, pc.AccessKeySecret = em.url, mpaassim.OwnKeyID, mpaassim.OwnKeySecret
		s.log.Info("dev mode: pushes go to the built-in mPaaS emulator, which accepts any template (MPAAS_AK_ENV is unset)",
			zap.String("endpoint", em.url), zap.String("stats", em.url+"/sim/stats"))
	}
	if c.MPaaSCA != "" {
		pool, err := dial.LoadCA(c.MPaaSCA)
		if err != nil {
			return nil, fmt.Errorf("MPAAS_CA: %w", err)
		}
		pc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if len(c.Credentials) > 0 {
		fleet, err := s.openFleet(pc)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, fleet.Close)
		s.desc["mpaas"] = fleet.Endpoint().URL()
		return fleet, nil
	}
	s.keyName = config.KeyPrefix(pc.AccessKeyID)
	client, err := push.New(pc)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, client.Close)
	s.desc["mpaas"] = client.Endpoint().URL()
	return client, nil
}
