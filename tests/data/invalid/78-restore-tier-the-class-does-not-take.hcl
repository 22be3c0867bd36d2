# expect: unavailable_restore_tier, needless_restore_tier
# Deep Archive has no Expedited retrieval; an infrequent-access copy is read at once, so a
# tier on it does nothing.

drplan {
  project = "acme"
}

provider "aws" {}

region "us-east-1" {
  cloud = "aws"
  role  = "active"

  kubernetes {
    context   = "acme-use1"
    namespace = "acme"
  }
}

region "ap-south-1" {
  cloud = "aws"
  role  = "cold"

  kubernetes {
    context   = "acme-aps1"
    namespace = "acme"
  }
}

backup "database" {
  schedule  = "0 * * * *"
  retention = "30d"
  image     = "acme/backup-tool:1.4"

  restore {
    timeout = "30m"
  }

  destination "archive" {
    s3 {
      bucket        = "acme-archive"
      region        = "us-east-1"
      storage_class = "DEEP_ARCHIVE"
      restore_tier  = "Expedited"
    }
  }

  destination "recent" {
    s3 {
      bucket        = "acme-recent"
      region        = "ap-south-1"
      storage_class = "STANDARD_IA"
      restore_tier  = "Bulk"
    }
  }

  destination "offsite" {
    nas {
      path = "/mnt/nas/acme"
    }
  }
}
