# expect: restore_without_cluster
# The cold region would be restored into on promotion, but has no cluster for the restore Job.

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
}

backup "database" {
  schedule  = "0 * * * *"
  retention = "30d"
  image     = "acme/backup-tool:1.4"

  restore {
    when = ["cold"]
  }

  destination "primary" {
    s3 {
      bucket = "acme-backups"
      region = "us-east-1"
    }
  }

  destination "offsite" {
    nas {
      path = "/mnt/nas/acme"
    }
  }
}
