package uploads

import "github.com/aws/aws-sdk-go-v2/service/s3"

// S3Client is the SDK client the Store talks to its bucket with, for
// tusd's S3 store (resumable uploads), which writes under
// submission.TusPrefix of the same bucket with the same credentials.
func (s *Objects) S3Client() *s3.Client { return s.client }
