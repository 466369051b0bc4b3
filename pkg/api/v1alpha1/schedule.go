package v1alpha1

import (
	"fmt"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"
)

// scheduleHelp says how to write spec.backup.schedule, after what is wrong.
const scheduleHelp = `write minute hour day-of-month month day-of-week, such as "0 3 * * *" for 03:00 UTC every day, or @daily, @hourly, @every 6h`

// validateSchedule checks spec.backup.schedule as Velero's Schedule
// controller will: Velero v1.18.3 parses it with go-cron's ParseStandard
// (five fields or a descriptor), the module and version Seed pins too, so a
// schedule accepted here is never one Velero marks FailedValidation. Two
// more checks catch what Velero accepts but cannot honour: a time zone
// other than UTC (Seed's Velero image carries no time-zone database) and a
// schedule no date matches, which would never take a backup.
func validateSchedule(errs *errorList, s string) {
	const field = "spec.backup.schedule"
	if s == "" {
		return
	}
	before := len(*errs)
	if printable(errs, field, s); len(*errs) > before {
		return
	}
	if zone, ok := cronZone(s); ok && zone != "UTC" && zone != "" {
		errs.add(field, fmt.Sprintf("%q names the time zone %s, which Velero cannot look up in Seed's image (it has no time-zone database): drop the %s prefix and write the time in UTC",
			s, zone, s[:strings.Index(s, "=")+1]))
		return
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		errs.add(field, fmt.Sprintf("%q is not a cron schedule (%v): %s", s, err, scheduleHelp))
		return
	}
	// Next gives up after go-cron's search horizon, as it does in Velero,
	// where a zero time means no backup ever; a fixed start keeps
	// validation free of the clock.
	if sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		errs.add(field, fmt.Sprintf("%q matches no date, so Velero would never take a backup: %s", s, scheduleHelp))
	}
}

// cronZone returns the zone of a TZ= or CRON_TZ= prefix, as go-cron reads
// it (matching quotes stripped), and whether there is one.
func cronZone(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "CRON_TZ=")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "TZ="); !ok {
			return "", false
		}
	}
	zone, _, _ := strings.Cut(rest, " ")
	if len(zone) >= 2 && (zone[0] == '"' || zone[0] == '\'') && zone[len(zone)-1] == zone[0] {
		zone = zone[1 : len(zone)-1]
	}
	return zone, true
}
