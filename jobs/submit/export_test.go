package submit

// PublicOnly makes c submit through asynq's public API, as when the asynq
// linked in is not the version keyspace describes.
func PublicOnly(c *Client) { c.direct = false }
