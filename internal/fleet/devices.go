package fleet

import (
	"context"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
)

// WatchDevices writes each change of a device's state (list: the
// registry's, and the gateway link's) to the outbox, looking every
// interval until ctx ends; the first look sends every device.
func WatchDevices(ctx context.Context, j *journal.Journal, list func() []device.Health, every time.Duration, wake func(), log *zap.Logger) {
	sent := map[string]device.Health{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var changed []device.Health
		for _, h := range list() {
			key := h.Lane + "/" + h.Role + "/" + h.Name
			if last, ok := sent[key]; !ok || last.State != h.State || !last.Since.Equal(h.Since) {
				changed = append(changed, h)
			}
		}
		if len(changed) > 0 {
			err := j.Update(func(tx *journal.Tx) error {
				for _, h := range changed {
					if err := tx.AddDevice(h.Lane, h.Role+"/"+h.Name, h); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				log.Warn("fleet: device changes not recorded", zap.Error(err))
			} else {
				for _, h := range changed {
					sent[h.Lane+"/"+h.Role+"/"+h.Name] = h
				}
				wake()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
