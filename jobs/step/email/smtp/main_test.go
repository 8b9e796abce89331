package smtp

import (
	"os"
	"testing"

	"github.com/formq/formq/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
