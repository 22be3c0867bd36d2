# Database backups every 30 minutes (inside the 1h RPO): one copy in each AWS region
# and one on the on-premises NAS, so losing a whole region or the AWS account still
# leaves a copy (3-2-1).

backup "postgres" {
  schedule  = "*/30 * * * *"
  type      = "full"
  retention = "14d"
  image     = "ghcr.io/ledger/pg-backup:2.3.1"

  encryption {
    gpg_recipient = "dr@ledger.example.com"
  }

  destination "use1" {
    s3 {
      bucket = "ledger-backups-use1"
      prefix = "postgres/"
      region = "us-east-1"
    }
  }

  destination "usw2" {
    s3 {
      bucket        = "ledger-backups-usw2"
      prefix        = "postgres/"
      region        = "us-west-2"
      storage_class = "STANDARD_IA"
    }
  }

  destination "onprem" {
    nas {
      path = "/mnt/nas/ledger/postgres"
    }
  }
}
