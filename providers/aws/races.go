package aws

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Several callers can ensure one cluster's infrastructure at once (two
// `seed up`, or `seed up` and `seed kubeconfig`): each describes, finds
// nothing, and creates. Two rules make them end with one of everything,
// all using the same one.
//
// Where EC2 itself lets only one exist, the second write fails, and that
// caller's step starts again from a fresh describe, which finds what the
// first made (retryRaces): a security group's name in its VPC, a subnet's
// CIDR, a VPC's one internet gateway, a route's destination, a subnet's
// one route table, a group's rule, and the ClientToken of the route table
// and of the endpoint's holder interface.
//
// Where EC2 keeps every create (VPCs, Elastic IPs), the caller that made
// one waits out settleDelay, describes again, and keeps the one every
// caller keeps, by a rule they all apply alike: the lowest ID (survivor;
// for Elastic IPs one already mapped comes first, see keptAddress). If
// that is not its own, it deletes its own, and only that, and uses the
// survivor (keepOne). An internet gateway is made freely too, but only one
// can be attached to the VPC: the attached one is kept, and a caller whose
// own did not attach deletes it.
//
// Everything is tagged as it is made (TagSpecifications), so a caller that
// dies between making a loser and deleting it leaves it tagged: later
// calls keep the survivor all the same, and destroy removes both.

// settleDelay is how long a caller that made a VPC or an Elastic IP waits
// before it looks for others made at the same time. EC2's IDs are not in
// creation order and nothing says when another caller's create has landed,
// so without the wait a caller could see its own alone and go on with it
// while a slower create, with a lower ID, makes every later caller keep
// that one. A create slower than this can still do that.
const settleDelay = 5 * time.Second

// raceAttempts bounds how often a step starts again after losing a race.
// A concurrent Seed settles in one or two; more means that something else
// holds what the step wants (a subnet whose CIDR overlaps, a route to
// another target), and the last error says what.
const raceAttempts = 5

// lostRace wraps the answer to a write that another caller made fail by
// writing first.
type lostRace struct{ err error }

func (l *lostRace) Error() string { return "another caller wrote first: " + l.err.Error() }
func (l *lostRace) Unwrap() error { return l.err }

// raced is err as a lost race when its code is one of codes, else err
// classified with op.
func raced(op string, err error, codes ...string) error {
	if isCode(err, codes...) {
		return &lostRace{err: err}
	}
	return classify(op, err)
}

// retryRaces runs step, which describes afresh each time, again while it
// reports a lost race, at most raceAttempts times in all. Other errors are
// returned as they are; the last lost race is classified with op.
func retryRaces[T any](ctx context.Context, p *provider, op string, step func() (T, error)) (T, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		out, err := step()
		var l *lostRace
		if !errors.As(err, &l) {
			return out, err
		}
		if attempt == raceAttempts {
			return out, classify(op, l.err)
		}
		p.log.Info("Describing again: another caller wrote first", "step", op, "code", errorCode(l.err), "after", delay)
		if serr := p.clock.Sleep(ctx, delay); serr != nil {
			return out, classify(op, l.err)
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// survivor is the one of ids every caller keeps: the lowest. ids is not
// empty.
func survivor(ids []string) string { return slices.Min(ids) }

// keepOne settles a race after this call made mine, one of something EC2
// lets every caller make: it waits out settleDelay, asks find for the one
// to keep (find describes again and counts mine in, as a describe may not
// list it yet), and deletes mine if it is not that one.
func (p *provider) keepOne(ctx context.Context, kind, key, mine string, find func() (string, error), del func() error) (string, error) {
	if err := p.clock.Sleep(ctx, settleDelay); err != nil {
		return "", err
	}
	keep, err := find()
	if err != nil {
		return "", err
	}
	if keep != mine {
		p.dropLost(ctx, kind, key, mine, keep, del)
	}
	return keep, nil
}

// dropLost deletes mine, which this call made and another caller's
// outlived. If that fails, mine stays, tagged: Ensure keeps the survivor
// all the same, and destroy removes it.
func (p *provider) dropLost(ctx context.Context, kind, key, mine, kept string, del func() error) {
	p.log.Info("Deleting the "+kind+" this call made: another caller made one at the same time, and every caller keeps "+kept, key, mine)
	_, err := afterCreate(ctx, p, func() (struct{}, error) { return struct{}{}, del() })
	if err != nil && !isNotFound(err) {
		p.log.Info("Leaving the "+kind+" this call made: it could not be deleted, and destroy removes it", key, mine, "code", errorCode(err), "error", err.Error())
	}
}

// keptAddress is the Elastic IP every caller keeps: one already mapped,
// since kubeconfigs and certificates name its public IP, with the lowest
// allocation ID among those, or among all when none is. as is not empty.
func keptAddress(as []types.Address) types.Address {
	best := as[0]
	for _, a := range as[1:] {
		mapped, bestMapped := a.AssociationId != nil, best.AssociationId != nil
		if mapped != bestMapped {
			if mapped {
				best = a
			}
			continue
		}
		if aws.ToString(a.AllocationId) < aws.ToString(best.AllocationId) {
			best = a
		}
	}
	return best
}
