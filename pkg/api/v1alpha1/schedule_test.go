package v1alpha1

import "testing"

// spec.backup.schedule is accepted exactly when Velero's Schedule
// controller would run it, and a refusal names the field and how to write
// one.
func TestValidateBackupSchedule(t *testing.T) {
	for _, tt := range []struct {
		schedule string
		want     []FieldError
	}{
		{schedule: ""},
		{schedule: "0 3 * * *"},
		{schedule: "*/15 * * * *"},
		{schedule: "30 2 * * 1-5"},
		{schedule: "0 0 29 2 *"}, // leap days come round
		{schedule: "* * * * ?"},
		{schedule: "@daily"},
		{schedule: "@every 6h"},
		{schedule: "TZ=UTC 0 3 * * *"},
		{schedule: "CRON_TZ='UTC' 0 3 * * *"},
		{
			schedule: "every day",
			want: []FieldError{{Field: "spec.backup.schedule",
				Detail: `"every day" is not a cron schedule (expected exactly 5 fields, found 2: [every day]): write minute hour day-of-month month day-of-week, such as "0 3 * * *"`}},
		},
		{
			// Velero's parser takes no seconds field.
			schedule: "0 0 3 * * *",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "found 6"}},
		},
		{
			schedule: "61 * * * *",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "above maximum (59)"}},
		},
		{
			schedule: "@every 500ms",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "at least 1s"}},
		},
		{
			schedule: "@reboot",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: `unrecognized descriptor`}},
		},
		{
			// Jenkins' H and extended forms are options Velero leaves off.
			schedule: "H 3 * * *",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "is not a cron schedule"}},
		},
		{
			schedule: "0 3 L * *",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "is not a cron schedule"}},
		},
		{
			schedule: "0 0 30 2 *",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: `"0 0 30 2 *" matches no date, so Velero would never take a backup`}},
		},
		{
			schedule: "CRON_TZ=Europe/Berlin 0 3 * * *",
			want: []FieldError{{Field: "spec.backup.schedule",
				Detail: "names the time zone Europe/Berlin, which Velero cannot look up in Seed's image (it has no time-zone database): drop the CRON_TZ= prefix and write the time in UTC"}},
		},
		{
			schedule: `TZ="America/New_York" 0 3 * * *`,
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "time zone America/New_York"}},
		},
		{
			// Said once: the character is the problem.
			schedule: "0 3 * * *\n",
			want:     []FieldError{{Field: "spec.backup.schedule", Detail: "U+000A"}},
		},
	} {
		t.Run(tt.schedule, func(t *testing.T) {
			c := validCluster()
			c.Spec.Backup.Schedule = tt.schedule
			wantProblems(t, Validate(c, ValidateOptions{}), tt.want)
		})
	}
}
