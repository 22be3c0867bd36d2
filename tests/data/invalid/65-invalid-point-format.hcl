# expect: invalid_point_format
# A point format must name the moment to the minute: this one has no hour.

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
  point_format = "%Y%m%d"

  restore {
    timeout = "30m"
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
