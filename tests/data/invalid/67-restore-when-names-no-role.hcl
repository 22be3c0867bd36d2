# expect: invalid_value
# `when` lists the roles a promoted region comes from; `warm` is none of them.

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
    when = ["warm"]
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
