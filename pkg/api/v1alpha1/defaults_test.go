package v1alpha1

import "testing"

func TestSetDefaultsBackup(t *testing.T) {
	off := &Cluster{}
	SetDefaults(off)
	if off.Spec.Backup.MaxAge != nil || off.Spec.Backup.BeforeUpgrade != nil {
		t.Errorf("backups off: %+v; want nothing defaulted", off.Spec.Backup)
	}
	on := &Cluster{Spec: ClusterSpec{Backup: BackupSpec{Enabled: true, Store: &BackupStoreSpec{Endpoint: "https://s3.example.com"}}}}
	SetDefaults(on)
	b := on.Spec.Backup
	if b.MaxAge == nil || b.MaxAge.Duration != DefaultBackupMaxAge || b.BeforeUpgrade == nil || !*b.BeforeUpgrade || b.Store.Region != DefaultBackupRegion {
		t.Errorf("backups on: maxAge %v, beforeUpgrade %v, region %q", b.MaxAge, b.BeforeUpgrade, b.Store.Region)
	}
	kept := &Cluster{Spec: ClusterSpec{Backup: BackupSpec{Enabled: true, MaxAge: NewDuration(DefaultBackupMaxAge * 2), Store: &BackupStoreSpec{Region: "eu-west-1"}}}}
	SetDefaults(kept)
	if kept.Spec.Backup.MaxAge.Duration != 2*DefaultBackupMaxAge || kept.Spec.Backup.Store.Region != "eu-west-1" {
		t.Errorf("what the user wrote was overwritten: %+v", kept.Spec.Backup)
	}
}
