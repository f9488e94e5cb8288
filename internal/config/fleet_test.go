package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On the sandbox (make run's config.yaml, with no merchant.id) the
// fleet's subjects name the sandbox's merchant, not an empty token; a
// box's name is its lanes' unless fleet.box says; names that are no
// subject token are refused once fleet.url is set.
func TestFleetNamesAreSubjectTokens(t *testing.T) {
	c, _, err := Load("../../config.yaml")
	require.NoError(t, err)
	c.Fleet.URL = "nats://127.0.0.1:4222"
	_, err = c.Validate()
	require.NoError(t, err)
	assert.Equal(t, "sandbox_merchant_001", c.FleetMerchant())
	assert.Equal(t, "L1", c.FleetBox())
	l2 := c.Lanes[0]
	l2.ID, l2.DeviceInfo, l2.Scanners, l2.Displays = "L2", "POS02", nil, nil
	c.Lanes = append(c.Lanes, l2)
	assert.Equal(t, "L1-L2", c.FleetBox())
	c.Fleet.Box = "POS1"
	assert.Equal(t, "POS1", c.FleetBox())

	c.Merchant.ID = "1900000109"
	assert.Equal(t, "1900000109", c.FleetMerchant(), "a merchant.id is used as it is")
	_, err = c.Validate()
	require.NoError(t, err, "the good config the bad ones are made from")
	for name, bad := range map[string]func(*Config){
		"box":      func(c *Config) { c.Fleet.Box = "POS.1" },
		"lane":     func(c *Config) { c.Lanes[0].ID = "L>1" },
		"merchant": func(c *Config) { c.Merchant.ID = "m 1" },
		"store":    func(c *Config) { c.Merchant.StoreID = "S*" },
	} {
		b := c
		b.Lanes = append([]Lane(nil), c.Lanes...)
		bad(&b)
		_, err := b.Validate()
		assert.Error(t, err, name)
	}
}
